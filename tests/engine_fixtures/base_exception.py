"""A plugin whose import raises a BaseException of its own."""


class Abandon(BaseException):
    pass


raise Abandon("gave up")
