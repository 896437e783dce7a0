"""Vision: reading licence plates from photos and camera streams (`vigila.vision.anpr`)."""
