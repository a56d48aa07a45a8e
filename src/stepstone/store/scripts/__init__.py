"""Each store operation's statements, written once for every dialect (see :mod:`.tx`)."""
