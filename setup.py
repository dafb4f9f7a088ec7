"""Build of datasafe's optional C module; everything else is in pyproject.toml.

datasafe.masking._native does the per-value work of masking in C (it links OpenSSL's libcrypto for
SHA-256). It is optional: where it cannot be built, masking uses its pure-Python twin
(datasafe/masking/native.py), with the same output, only slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "datasafe.masking._native",
            sources=["datasafe/masking/_native.c", "datasafe/masking/_native_fields.c",
                     "datasafe/masking/_native_rules.c", "datasafe/masking/_native_phone.c",
                     "datasafe/masking/_native_draws.c", "datasafe/masking/_native_bloom.c",
                     "datasafe/masking/_native_distinct.c"],
            depends=["datasafe/masking/_native.h", "datasafe/masking/_native_rules.h",
                     "datasafe/masking/_native_leaks.h"],
            libraries=["crypto"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
