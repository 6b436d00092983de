"""Objectives: VideoMAE, video–utterance contrastive, both jointly; the registry; the tube-mask sampler."""
from .base import Objective, ObjectiveOutput, create_objective, list_objectives, objective_class, register_objective
from .contrastive import Contrastive, VideoMAEContrastive, symmetric_info_nce
from .masking import TubeMask, TubeMaskSampler
from .videomae import Reconstruction, VideoMAE, pixel_targets, unpatchify

__all__ = ["Objective", "ObjectiveOutput", "create_objective", "list_objectives", "register_objective",
           "TubeMask", "TubeMaskSampler", "VideoMAE", "Reconstruction", "pixel_targets", "unpatchify", "Contrastive",
           "VideoMAEContrastive",
           "symmetric_info_nce", "objective_class"]
