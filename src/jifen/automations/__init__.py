"""Marketing automations (seed 003: "balance < 200 and no purchase in 30 days → SMS offer"; seed 001: win-back
at 30/60/90 days): a trigger (a schedule, or events of a type since the last run), a CEL condition over member
facts, and actions (a message, points, a coupon, a task invitation) carried out by flows/automate.py."""
