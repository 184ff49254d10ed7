"""Reward recommendations: what a member is likely to redeem (implicit-feedback matrix factorisation on
redemptions and browsing, a learned ranking with affordability, popularity within tier and category for
cold start), what their expiring points can buy, and an evaluation against popularity on a held-out period."""
