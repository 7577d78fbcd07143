#include <tiffio.h>

/* TIFFGetField and TIFFSetField are variadic, which Swift cannot call: one typed wrapper per
   field we read or write. */
static inline int ctiff_dimensions(TIFF *tif, uint32_t *width, uint32_t *height) {
    return TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, width) && TIFFGetField(tif, TIFFTAG_IMAGELENGTH, height);
}

/* XResolution, YResolution and ResolutionUnit; 0 when any is missing. */
static inline int ctiff_resolution(TIFF *tif, float *x, float *y, uint16_t *unit) {
    *unit = RESUNIT_INCH;  /* the TIFF default when the tag is absent */
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, unit);
    return TIFFGetField(tif, TIFFTAG_XRESOLUTION, x) && TIFFGetField(tif, TIFFTAG_YRESOLUTION, y);
}

static inline int ctiff_tile_size(TIFF *tif, uint32_t *width, uint32_t *height) {
    return TIFFGetField(tif, TIFFTAG_TILEWIDTH, width) && TIFFGetField(tif, TIFFTAG_TILELENGTH, height);
}

static inline int ctiff_compression(TIFF *tif, uint16_t *compression) {
    return TIFFGetField(tif, TIFFTAG_COMPRESSION, compression);
}

/* The tags of one tiled, 8-bit level: 3 channels (RGB, or YCbCr-coded JPEG) or 4 (RGB with
   unassociated alpha). Resolution in pixels per centimetre; 0 leaves it out. */
static inline int ctiff_set_level(TIFF *tif, uint32_t width, uint32_t height, uint32_t tile, int channels, int jpeg, int quality,
                                  int reduced, int resolution_unit, double resolution, const char *description) {
    int ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width) && TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height)
        && TIFFSetField(tif, TIFFTAG_TILEWIDTH, tile) && TIFFSetField(tif, TIFFTAG_TILELENGTH, tile)
        && TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8) && TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, channels)
        && TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG)
        && TIFFSetField(tif, TIFFTAG_SUBFILETYPE, reduced ? FILETYPE_REDUCEDIMAGE : 0);
    if (!ok) return 0;
    if (channels == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        ok = TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    if (jpeg) {
        ok = ok && TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_JPEG) && TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR)
            && TIFFSetField(tif, TIFFTAG_YCBCRSUBSAMPLING, 2, 2) && TIFFSetField(tif, TIFFTAG_JPEGQUALITY, quality)
            && TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    } else {
        ok = ok && TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE) && TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB)
            && TIFFSetField(tif, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL) && TIFFSetField(tif, TIFFTAG_ZIPQUALITY, 2);
    }
    /* resolution_unit: RESUNIT_CENTIMETER (pixels per cm) or RESUNIT_NONE (pixels per slide pixel). */
    if (ok && resolution > 0) {
        ok = TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, (uint16_t)resolution_unit) && TIFFSetField(tif, TIFFTAG_XRESOLUTION, (float)resolution)
            && TIFFSetField(tif, TIFFTAG_YRESOLUTION, (float)resolution);
    }
    if (ok && description) ok = TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description);
    return ok;
}

/* libtiff prints warnings (unknown tags, as scanners write) to stderr by default; callers
   report failures themselves. */
static inline void ctiff_silence(void) {
    TIFFSetWarningHandler(NULL);
    TIFFSetErrorHandler(NULL);
}
