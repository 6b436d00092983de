"""Models: the registry and the video ViT sizes."""
from .registry import create_model, list_models, register_model
from .vit import SIZES, Attention, Block, PatchEmbed, VideoViT, count_parameters, sincos_pos_embed_3d

__all__ = ["create_model", "list_models", "register_model", "VideoViT", "PatchEmbed", "Attention", "Block",
           "SIZES", "count_parameters", "sincos_pos_embed_3d"]
