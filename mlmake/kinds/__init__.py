"""The built-in node kinds, one package each. Declarations are cheap; recipes import their heavy
libraries. The registry that finds them (and third-party kinds) is mlmake.core.registry."""
