#include <tiffio.h>

/* TIFFGetField is variadic, which Swift cannot call: one typed wrapper per field we read. */
static inline int ctiff_dimensions(TIFF *tif, uint32_t *width, uint32_t *height) {
    return TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, width) && TIFFGetField(tif, TIFFTAG_IMAGELENGTH, height);
}

/* libtiff prints warnings (unknown tags, as scanners write) to stderr by default; callers
   report failures themselves. */
static inline void ctiff_silence(void) {
    TIFFSetWarningHandler(NULL);
    TIFFSetErrorHandler(NULL);
}
