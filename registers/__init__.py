"""Register-map compiler: declarative CSV mappings in, a frozen CompiledMap out.

Pure: never imports ``gateway``. Every rule is numbered (``registers.compile.rules.RULES``).
"""

from registers.compile import MappingError, compile_mappings, default_mappings_dir, load_default
from registers.model import CompiledMap, ModbusMap, ModbusRegister, ModbusTable, PathSpec

__all__ = [
    "CompiledMap",
    "MappingError",
    "ModbusMap",
    "ModbusRegister",
    "ModbusTable",
    "PathSpec",
    "compile_mappings",
    "default_mappings_dir",
    "load_default",
]
