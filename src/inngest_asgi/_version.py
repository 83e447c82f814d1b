"""Package version and the SDK identity sent to the Inngest server."""

__version__ = "0.1.0"

#: Language tag reported in introspection and registration.
SDK_LANGUAGE = "py"
#: Name half of the ``x-inngest-sdk`` header (``<name>:v<semver>``, exactly one colon).
SDK_NAME = "inngest-asgi"
#: Value of the ``x-inngest-sdk`` and ``user-agent`` headers.
SDK_IDENT = f"{SDK_NAME}:v{__version__}"
