"""The admin app, with the loyalty program's own site (``config.admin_site``), loaded once the
apps are (the site's console reads the models)."""

from django.contrib.admin.apps import AdminConfig


class LoyaltyAdminConfig(AdminConfig):
    default_site = "config.admin_site.LoyaltyAdminSite"
