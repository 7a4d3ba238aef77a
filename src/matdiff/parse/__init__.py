"""Text -> Expr."""


def parse(text, shapes=None):
    raise NotImplementedError
