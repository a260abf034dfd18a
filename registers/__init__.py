"""Register-map compiler: declarative CSV mappings in, a frozen CompiledMap out.

Pure: never imports ``gateway``. Every rule is numbered in ``rules.py``.
"""

from registers.compile import MappingError, compile_mappings, default_mappings_dir, load_default
from registers.model import CompiledMap, Register, ServiceTable

__all__ = [
    "CompiledMap",
    "MappingError",
    "Register",
    "ServiceTable",
    "compile_mappings",
    "default_mappings_dir",
    "load_default",
]
