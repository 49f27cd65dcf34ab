"""``da3cpp bench --peers`` (issue #23): the export-time stand-ins equal what they replace, and
bad arguments are refused by name. The timing run itself is a benchmark, not a test."""

from __future__ import annotations

import pytest

from depth_anything_cpp import bench_peers, cli


def test_export_stand_ins_equal_the_originals(reference):
    import torch

    import depth_anything_3.model.da3 as da3_mod
    from depth_anything_3.utils.geometry import affine_inverse

    a, b = torch.arange(5), torch.arange(7)
    g = torch.Generator().manual_seed(0)
    m = torch.randn(2, 3, 4, 4, generator=g)
    orig = torch.cartesian_prod
    want_prod, want_inv = orig(a, b), affine_inverse(m)
    with bench_peers._exportable():
        assert torch.cartesian_prod is not orig  # patched inside
        assert torch.equal(torch.cartesian_prod(a, b), want_prod)
        assert torch.equal(da3_mod.affine_inverse(m), want_inv)
        assert da3_mod.affine_inverse is not affine_inverse
    assert da3_mod.affine_inverse is affine_inverse and torch.cartesian_prod is orig  # restored


@pytest.mark.parametrize("args,name", [(["--peers", "tensorrt"], "--peers"), (["--peers="], "--peers"),
                                       (["--peers", "torch", "--types", "f8"], "--types")])
def test_bad_arguments_named(args, name):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", *args])
    assert name in str(e.value)
