"""Is a renewal authentic (DESIGN §4 rule 2)? Signed by the key that signed the current CA:
authenticated; self-signed, or naming that issuer without its signature: a look-alike;
no issuer of the current CA on record, or another issuer: unauthenticated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.analysis.renewal_auth import RenewalCheck, check_renewal
from shared.local import samples

TENANT = "0a0a0a0a-1111-4222-8333-944445555666"
PCA = samples.azure_sphere_pca()
FORGED_PCA = samples.azure_sphere_pca(seed=77)  # the same name, another key
OTHER_ISSUER = samples.tenant_ca(None, key_seed=901)  # any CA: a different name and key
CURRENT = samples.tenant_ca(TENANT, datetime(2020, 7, 1, tzinfo=UTC), key_seed=900)
RENEWED = samples.tenant_ca(TENANT, datetime(2020, 8, 5, tzinfo=UTC), key_seed=902)


@pytest.mark.parametrize(
    ("renewed", "issuers", "expected"),
    [
        (RENEWED, [PCA], RenewalCheck.AUTHENTICATED),
        (RENEWED, [FORGED_PCA, PCA], RenewalCheck.AUTHENTICATED),
        (RENEWED, [], RenewalCheck.UNAUTHENTICATED),  # no chain uploaded yet
        (RENEWED, [FORGED_PCA], RenewalCheck.UNAUTHENTICATED),  # it signed neither
        (samples.look_alike_tenant_ca(TENANT), [PCA], RenewalCheck.LOOK_ALIKE),
        (samples.look_alike_tenant_ca(TENANT), [], RenewalCheck.LOOK_ALIKE),  # self-signed
        (
            samples.tenant_ca(
                TENANT, datetime(2020, 8, 5, tzinfo=UTC), key_seed=903, issuer=FORGED_PCA
            ),
            [PCA],
            RenewalCheck.LOOK_ALIKE,  # names PCA01, signed by another key
        ),
        (
            samples.tenant_ca(
                TENANT, datetime(2020, 8, 5, tzinfo=UTC), key_seed=904, issuer=OTHER_ISSUER
            ),
            [PCA, OTHER_ISSUER],
            RenewalCheck.UNAUTHENTICATED,  # another issuer: a rotation we cannot prove
        ),
    ],
)
def test_check_renewal(
    renewed: samples.Issued, issuers: list[samples.Issued], expected: RenewalCheck
) -> None:
    ders = [issuer.der for issuer in issuers]
    assert check_renewal(CURRENT.der, renewed.der, ders) is expected


def test_an_affected_ca_with_mismatched_identifiers_still_authenticates_its_renewal() -> None:
    """The 2020 certificates carry mismatched signature algorithm identifiers; OpenSSL
    refuses them, but their signature is the issuer's, and the check says so."""
    affected = samples.mismatched(CURRENT, PCA, "null-outer")
    assert check_renewal(affected, RENEWED.der, [PCA.der]) is RenewalCheck.AUTHENTICATED


def test_bytes_that_are_no_certificate_never_authenticate() -> None:
    assert check_renewal(b"junk", RENEWED.der, [PCA.der]) is RenewalCheck.UNAUTHENTICATED
    assert check_renewal(CURRENT.der, b"junk", [PCA.der]) is RenewalCheck.UNAUTHENTICATED
    assert check_renewal(CURRENT.der, RENEWED.der, [b"junk"]) is RenewalCheck.UNAUTHENTICATED
