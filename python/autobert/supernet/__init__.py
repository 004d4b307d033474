"""BIWS weight-sharing supernet: shared attention/conv branches per layer, child selection and
extraction, samplers, and the masked shared-weight optimiser step (DESIGN.md §4)."""
from autobert.model.space import SearchSpace
from autobert.supernet.blocks import SuperBlock
from autobert.supernet.optim import make_optimizer, masked_step
from autobert.supernet.samplers import SingleChangeSampler, UniformSampler
from autobert.supernet.supernet import Supernet

__all__ = ["Supernet", "SuperBlock", "SearchSpace", "UniformSampler", "SingleChangeSampler",
           "make_optimizer", "masked_step"]
