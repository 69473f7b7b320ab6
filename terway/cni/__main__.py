"""``python -m terway.cni``: same as the ``terway`` executable."""

from terway.cni.main import main

raise SystemExit(main())
