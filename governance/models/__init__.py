from governance.models.tokens import ApiToken

__all__ = ["ApiToken"]
