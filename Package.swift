// swift-tools-version:6.0
import PackageDescription

// Layering (arrows point one way; a tree, not a chain):
//   Storage → Annotations, Imaging, Results;  Console → Cluster (MPI);  Concurrency
//   Imaging → SlideIO → Tissue → Tiling
//   NN → ViT → SDMAE (+ Tiling, Cluster) → Predict (+ Results)
//   Results → MIL, Heatmap: drawing a heatmap or training MIL links no model stack
//   every module → Pipeline → wsi
// Each target's dependencies are exactly its imports (a test checks).
// C libraries come from Debian's -dev packages through pkg-config.
let package = Package(
    name: "wsi",
    products: [
        .executable(name: "wsi", targets: ["wsi"]),
    ],
    targets: [
        .systemLibrary(name: "COpenSlide", pkgConfig: "openslide",
                       providers: [.apt(["libopenslide-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // oneDNN's Debian package ships no pkg-config file; its headers and library are on the default paths.
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),

        .target(name: "Console"),
        .target(name: "Annotations", dependencies: ["Storage"]),
        .target(name: "Concurrency"),
        .target(name: "Cluster", dependencies: ["CMPI", "Console"]),
        .target(name: "Storage", dependencies: ["CHDF5"]),
        .target(name: "Imaging", dependencies: ["CPNG", "CTurboJPEG", "CTIFF", "Storage"]),
        .target(name: "SlideIO", dependencies: ["COpenSlide", "Imaging", "Concurrency", "Storage"]),
        .target(name: "Tissue", dependencies: ["SlideIO", "Imaging", "Annotations"]),
        .target(name: "Tiling", dependencies: ["SlideIO", "Tissue", "Annotations", "Imaging", "Storage", "Console", "Concurrency"]),
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),
        .target(name: "NN", dependencies: ["COpenBLAS", "CDNNL", "CKernels"]),
        .target(name: "ViT", dependencies: ["NN", "Imaging", "Storage"]),
        .target(name: "SDMAE", dependencies: ["ViT", "NN", "Cluster", "Tiling", "Imaging", "Storage", "Console"]),
        .target(name: "Results", dependencies: ["Storage"]),
        .target(name: "Predict", dependencies: ["ViT", "SDMAE", "NN", "Tiling", "SlideIO", "Imaging", "Storage", "Results"]),
        .target(name: "MIL", dependencies: ["NN", "Results", "Storage", "Console"]),
        .target(name: "Heatmap", dependencies: ["Results", "Imaging", "Storage"]),
        .target(name: "Pipeline", dependencies: ["ViT", "CYAML", "Cluster", "CSQLite", "Annotations", "SlideIO", "Tissue", "Tiling", "SDMAE", "Predict", "Results",
                                                 "MIL", "Heatmap", "NN", "Imaging", "Storage", "Console", "Concurrency"]),
        .executableTarget(name: "wsi", dependencies: ["Annotations", "Cluster", "SlideIO", "Tiling", "Console", "NN", "ViT", "SDMAE", "Predict", "MIL", "Heatmap", "Imaging", "Pipeline",
                                                     "Storage"]),

        .testTarget(name: "WSITests", dependencies: ["SlideIO", "Cluster", "Tissue", "Annotations", "Tiling", "Imaging", "Storage", "Console", "CKernels", "NN", "SDMAE",
                                                        "Predict", "Results", "MIL", "Heatmap", "Pipeline", "Concurrency", "ViT"]),
    ]
)
