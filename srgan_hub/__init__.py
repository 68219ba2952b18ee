"""SRGAN Hub: SRGAN (Ledig et al., CVPR 2017) super-resolution, packaged the Hugging Face way.

from srgan_hub import SRGenerator, upscale
upscale("photo.png").save("photo_x4.png")            # the bundled x4 model
model = SRGenerator.from_pretrained("org/srgan-x4")  # or a local folder
"""

from srgan_hub.models import CheckpointMismatchError, SRDiscriminator, SRGenerator

__version__ = "0.1.0"
__all__ = ["CheckpointMismatchError", "SRDiscriminator", "SRGenerator", "upscale", "__version__"]


def __getattr__(name: str):
    # upscale() pulls in PIL and the inference machinery; load it on first use to keep `import srgan_hub` light.
    if name == "upscale":
        from srgan_hub.inference import upscale

        return upscale
    raise AttributeError(f"module 'srgan_hub' has no attribute {name!r}")
