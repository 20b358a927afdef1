import Foundation
import Network
import SafeIO
import Tensors

/// Raw activations of several layers (and several images) as NumPy files: one `.npz` with one array per layer, or a
/// folder with one `LAYER.npy` per layer. Several images are stacked along the first (batch) dimension, in the
/// order they were given, so every layer's array is [N, C, H, W]; that needs the same working size for every image.
public enum FeatureArrays {
    /// Stacks each layer's activations over images (`perImage[i]` holds image i's layers, in the same order).
    public static func stack(_ perImage: [[(layer: String, tensor: Tensor)]], imageNames: [String]) throws -> [(key: String, value: Value)] {
        guard let first = perImage.first else { return [] }
        return try first.indices.map { k in
            let layer = first[k].layer
            let tensors = perImage.map { $0[k].tensor }
            if tensors.count == 1 { return (layer, .float(tensors[0])) }
            let shape = tensors[0].shape
            for (i, t) in tensors.enumerated() where t.shape != shape {
                throw FeatureArraysError(reason: "\(layer) is \(shape) for \(imageNames[0]) but \(t.shape) for \(imageNames[i]): stacking images needs one working size (--size N)")
            }
            let per = tensors[0].count
            let stacked = Tensor(shape: [tensors.count * (shape.first ?? 1)] + shape.dropFirst(), unsafeUninitialized: { out in
                for (i, t) in tensors.enumerated() {
                    t.withUnsafeBufferPointer { src in
                        (out.baseAddress! + i * per).update(from: src.baseAddress!, count: per)
                    }
                }
            })
            return (layer, .float(stacked))
        }
    }

    /// Writes the arrays as one `.npz` archive.
    public static func writeArchive(_ arrays: [(key: String, value: Value)], to url: URL) throws {
        try NumPyArchive.write(arrays, to: url)
    }

    /// Writes one `.npy` per array into `directory` (created), named after the layer made file-safe; returns the files.
    public static func writeFolder(_ arrays: [(key: String, value: Value)], to directory: URL) throws -> [URL] {
        try TemporaryFiles.createFolder(directory)
        let names = FeatureLayers.safeNames(arrays.map(\.key))
        return try arrays.map { key, value in
            let url = directory.appendingPathComponent(names[key]! + ".npy")
            try NumPyFile.write(value, to: url)
            return url
        }
    }
}

public struct FeatureArraysError: Error, CustomStringConvertible, LocalizedError {
    public var reason: String
    public var description: String { reason }
    public var errorDescription: String? { reason }
}
