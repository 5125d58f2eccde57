from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and roles"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.db.models.signals import post_migrate

        from accounts import sessions  # noqa: F401  (connects the login stamp)
        from accounts.lockout import lockout_logged
        from accounts.roles import roles_sync_after_migrate

        # Not restricted to this app: the role permissions belong to apps migrated after it.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
        user_locked_out.connect(lockout_logged, dispatch_uid="accounts.lockout_logged")
