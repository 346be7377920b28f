"""The roles of the backup server, as Django groups.

Later components attach their permissions to these groups in their own data
migrations; the names are fixed because administrators script against them.
"""

ADMINISTRATOR = "Administrator"
OPERATOR = "Operator"
RESTORE_OPERATOR = "Restore operator"
ROLES = (ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR)


def user_has_role(user, *roles: str) -> bool:
    """True for superusers and for members of any of the given groups."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()
