from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and roles"

    def ready(self) -> None:
        # Imported here: Django loads apps before their models; ready() is the place.
        from axes.signals import user_locked_out  # noqa: PLC0415
        from django.db.models.signals import post_migrate  # noqa: PLC0415

        from accounts import sessions  # noqa: F401, PLC0415  (connects the login stamp)
        from accounts.lockout import lockout_logged  # noqa: PLC0415
        from accounts.roles import roles_sync_after_migrate  # noqa: PLC0415

        # Not restricted to this app: the role permissions belong to apps migrated after it.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
        user_locked_out.connect(lockout_logged, dispatch_uid="accounts.lockout_logged")
