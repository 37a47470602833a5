"""The local cloud (development tooling, never deployed): moto made to behave like AWS, a Lambda runner,
the Workbench emulator and the commands around them."""

from __future__ import annotations

from local_cloud import botocore_data

botocore_data.share()
