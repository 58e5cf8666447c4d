"""Access kinds and derived write rules of vpmu.arch.regs."""

import pytest

from vpmu.arch.regs import Access, Field, RegisterSpec, apply_write, by_address, read_value


def _reg(*fields: Field, reset: int = 0) -> RegisterSpec:
    return RegisterSpec("R", 0x10, fields, reset=reset)


def test_reserved_bits_fault_and_read_zero() -> None:
    """A write setting a bit outside every field faults; reads mask reserved bits."""
    spec = _reg(Field("A", 3, 0))
    assert apply_write(spec, 0, 0x10).fault
    assert apply_write(spec, 0, 0xF).store == 0xF
    assert read_value(spec, 0xFF) == 0xF


def test_ro_register_faults_on_any_write() -> None:
    """An RO-only register faults even when the value written equals the stored one."""
    spec = _reg(Field("V", 63, 0, Access.RO))
    assert apply_write(spec, 5, 5).fault
    assert apply_write(spec, 5, 0).fault


def test_w1c_and_w1s_act_on_target_and_read_zero() -> None:
    """W1C/W1S writes produce clear/set masks and read back as 0."""
    clr = RegisterSpec("CLR", 1, (Field("B", 1, 0, Access.W1C),), target="S")
    setr = RegisterSpec("SET", 2, (Field("B", 1, 0, Access.W1S),), target="S")
    assert apply_write(clr, 0, 0b10).clear == 0b10
    assert apply_write(setr, 0, 0b01).set == 0b01
    assert read_value(clr, 0b11) == 0
    assert apply_write(clr, 0, 0b100).fault


def test_sign_extending_alias_ignores_high_half() -> None:
    """RW_SEXT32 sign-extends bit 31 to the field width and ignores bits 63:32."""
    spec = _reg(Field("COUNT", 47, 0, Access.RW_SEXT32))
    assert apply_write(spec, 0, 0x8000_0000).store == 0xFFFF_8000_0000
    assert apply_write(spec, 0, 0xFFFF_FFFF_1234_5678).store == 0x1234_5678
    assert apply_write(spec, 0, 1 << 64).fault


def test_declaration_errors_name_the_register() -> None:
    """Overlapping fields, reserved reset bits and duplicate addresses are our bugs."""
    with pytest.raises(ValueError, match="overlaps"):
        _reg(Field("A", 3, 0), Field("B", 4, 3))
    with pytest.raises(ValueError, match="reserved"):
        _reg(Field("A", 3, 0), reset=0x10)
    with pytest.raises(ValueError, match="declared twice"):
        by_address([_reg(Field("A", 0, 0)), _reg(Field("A", 0, 0))])
    with pytest.raises(ValueError, match="lsb <= msb"):
        Field("A", 2, 3)
