-- Macro: a u64 calls counter read as the signed number it stands for (the kernel's counter can
-- underflow to just below 2^64, which means a small negative count).
create or replace macro signed_calls(calls) as
calls::hugeint
- case when calls >= 9223372036854775808 then 18446744073709551616::hugeint else 0 end
