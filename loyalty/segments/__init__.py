"""Segments (用户分层): saved member filters operators compose in the admin, read by the admin,
the API and (later) campaigns and targeting."""
