"""The Vega, Vega-Lite and vega-embed JavaScript the report embeds, from vl-convert-python (the
libraries ship inside its wheel: nothing is downloaded). Imported only by `mlmake report`."""

from __future__ import annotations

from mlmake.core.errors import MlmakeError

EXTRA = "pip install 'mlmake[report]'"
# the bundle's own code: the page calls window.vegaEmbed
GLOBALS = "window.vegaEmbed = vegaEmbed; window.vegaLite = vegaLite; window.vega = vega;"


def javascript() -> str:
    """One script that defines vegaEmbed, vegaLite and vega on the window."""
    try:
        import vl_convert
    except ImportError:
        raise MlmakeError(f"mlmake report needs vl-convert-python (it holds the Vega-Lite JavaScript the report "
                          f"embeds): {EXTRA}") from None
    return str(vl_convert.javascript_bundle(GLOBALS))

