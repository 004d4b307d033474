"""The tolerance rule of DESIGN.md §5: error(kernel) <= 2 * error(eager, same dtype) + floor,
both measured against the float64 eager reference. The floor is 100 ulps of the kernel's dtype
relative to the reference's magnitude: where eager happens to round luckily (cancellation in a
derivative chain), a kernel that evaluates the same math in another order must not fail."""
import torch


def assert_close_to_reference(got: torch.Tensor, eager_same_dtype: torch.Tensor, ref64: torch.Tensor,
                              what: str = "", ulps: float = 100.0) -> None:
    if ref64.numel() == 0:
        return
    ref = ref64.double()
    scale = 1.0 + ref.abs().max().item()
    floor = ulps * torch.finfo(got.dtype).eps * scale
    e_kernel = (got.double() - ref).abs().max().item()
    e_eager = (eager_same_dtype.double() - ref).abs().max().item()
    bound = 2 * e_eager + floor
    assert e_kernel <= bound, f"{what}: error {e_kernel:.3g} > 2 x eager error {e_eager:.3g} + floor {floor:.3g}"
