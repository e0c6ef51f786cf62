"""envguard's masking integration (extra ``gx``): ``envguard mask`` and masking proofs validated
with Great Expectations.

This module stays light: Great Expectations, pandas and pyarrow are imported only inside the
functions that use them.
"""
