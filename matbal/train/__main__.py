"""``python -m matbal.train [--key value ...]`` (also under ``torchrun ... -m matbal.train``)."""
from .cli import main

raise SystemExit(main())
