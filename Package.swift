// swift-tools-version:5.9
import PackageDescription

// Layering (arrows = may import; each target declares exactly the targets its files import):
//   dream (CLI) -> Dreaming, Training, Inspection -> Models -> Network, Imaging
//   Network -> Tensors -> CBLAS, CKernels, Parallel -> CThreadPool ;  Imaging -> CPNG, CJPEG, Parallel ;  Network, Imaging -> SafeIO
// No unsafe compiler flags: kernels keep their preconditions, and the libraries stay usable as a dependency.
let package = Package(
    name: "dream",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dream", targets: ["DreamCLI"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Network", targets: ["Network"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Dreaming", targets: ["Dreaming"]),
        .library(name: "Inspection", targets: ["Inspection"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "SafeIO", targets: ["SafeIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", exact: "0.9.20"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        // Persistent worker threads that spin briefly between jobs (C: pthreads and C11 atomics).
        .target(name: "CThreadPool"),
        // The thread count and the one parallel loop helper every module shares (kernels and image resizing).
        .target(name: "Parallel", dependencies: ["CThreadPool"]),
        // Atomic writes, temporary-file cleanup on signals, never-overwrite-an-input checks, contained paths, terminal escaping.
        .target(name: "SafeIO"),
        // Hot kernels in C, compiled for SSE2, AVX2 + FMA and AVX-512 with per-function target attributes; the level is
        // chosen once at run time from the CPU (or DREAM_SIMD), so the binary runs on any x86-64.
        .target(name: "CKernels"),
        .target(name: "Tensors", dependencies: ["CBLAS", "CKernels", "Parallel"]),
        .target(name: "Network", dependencies: ["Tensors", "SafeIO", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["ONNX/onnx-subset.proto"]),
        .target(name: "Imaging", dependencies: ["CPNG", "CJPEG", "Parallel", "SafeIO"]),
        // Known models, the cache, descriptions (preprocessing, labels) and classification: glue between Network and Imaging.
        .target(name: "Models", dependencies: ["Network", "Imaging", "Tensors", "SafeIO"]),
        .target(name: "Dreaming", dependencies: ["Models", "Network", "Imaging", "Tensors", "SafeIO"]),
        .target(name: "Inspection", dependencies: ["Models", "Network", "Imaging", "Tensors", "Parallel", "SafeIO",
                                                   .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        // Transfer learning: image folders, feature cache, heads and losses, trainer, report.
        .target(name: "Training", dependencies: ["Models", "Network", "Imaging", "Tensors", "SafeIO",
                                                 .product(name: "SwiftCSV", package: "SwiftCSV")]),
        .executableTarget(name: "DreamCLI", dependencies: [
            "Models", "Network", "Imaging", "Dreaming", "Inspection", "Training", "Tensors", "Parallel", "SafeIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "Parallel"]),
        .testTarget(name: "NetworkTests", dependencies: ["Network", "Tensors", "SafeIO", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Network", "Imaging", "Tensors", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "CPNG", "CJPEG", "SafeIO", "TestSupport"]),
        .testTarget(name: "DreamingTests", dependencies: ["Dreaming", "Models", "Network", "Imaging", "Tensors", "TestSupport"]),
        .testTarget(name: "InspectionTests", dependencies: ["Inspection", "Models", "Network", "Imaging", "Tensors", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "Network", "Imaging", "Tensors", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Network", "Tensors"]),
    ]
)
