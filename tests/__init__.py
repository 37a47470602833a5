"""The test suite. Importing it (pytest does, before tests/conftest.py) lets Python write bytecode.

With PYTHONDONTWRITEBYTECODE set, as on some machines, every pytest process (each xdist worker among them)
compiled our sources and rewrote every test module's asserts again: a fifth of what a worker spent before its
first test. Bytecode goes to __pycache__, which git ignores and sam build leaves out of its artifacts; processes
the tests start keep the environment's setting.
"""

import sys

sys.dont_write_bytecode = False
