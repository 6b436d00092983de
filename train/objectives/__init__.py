"""Objectives: VideoMAE (and the registry other objectives join), the tube-mask sampler."""
from .base import Objective, ObjectiveOutput, create_objective, list_objectives, register_objective
from .masking import TubeMask, TubeMaskSampler
from .videomae import VideoMAE, pixel_targets

__all__ = ["Objective", "ObjectiveOutput", "create_objective", "list_objectives", "register_objective",
           "TubeMask", "TubeMaskSampler", "VideoMAE", "pixel_targets"]
