"""Leaderboard scores as the ledger and events move them, and the stores that keep them:
the seam through which the ledger and the event flow reach the boards (and their Redis mirror)
without importing the gamification above them."""
