"""``python -m vs_colorgan.render``: ``colorgan-render``."""
from vs_colorgan.render.command import main

raise SystemExit(main())
