import Foundation
import SwiftProtobuf
import Tensors

// TensorProto <-> Value. raw_data is fixed-width little-endian (ONNX spec); like every machine we build for,
// the host is little-endian, so float payloads are copied with one memcpy.

/// Reads ONNX test-data files (`input_0.pb`, `output_0.pb`): one serialized TensorProto each.
public enum TensorProtoFile {
    /// The tensor's name (may be empty) and its value; external data is looked up beside the file.
    public static func read(contentsOf url: URL) throws -> (name: String, value: Value) {
        let data = try readFile(url)
        let proto: Onnx_TensorProto
        do {
            proto = try Onnx_TensorProto(serializedBytes: data)
        } catch {
            throw ModelError.invalidProtobuf(file: url.path, what: "TensorProto", reason: "\(error)")
        }
        let external = ExternalDataReader(file: url.path, baseDirectory: url.deletingLastPathComponent())
        return (proto.name, try value(from: proto, file: url.path, external: external))
    }
}

/// Resolves and reads external tensor data, confined to the model's directory; caches one mapping per file.
final class ExternalDataReader {
    let file: String
    let baseDirectory: URL?
    private var mapped: [String: Data] = [:]

    init(file: String, baseDirectory: URL?) {
        self.file = file
        self.baseDirectory = baseDirectory
    }

    /// The bytes described by `external_data` (keys location, offset, length) of tensor `name`.
    func bytes(for entries: [Onnx_StringStringEntryProto], tensor name: String) throws -> Data {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in entries {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let v = Int(entry.value), v >= 0 else {
                    throw ModelError.invalidModel(file: file, reason: "tensor '\(name)' has external data offset '\(entry.value)'")
                }
                offset = v
            case "length":
                guard let v = Int(entry.value), v >= 0 else {
                    throw ModelError.invalidModel(file: file, reason: "tensor '\(name)' has external data length '\(entry.value)'")
                }
                length = v
            default: break  // checksum and future keys are advisory
            }
        }
        guard let location, !location.isEmpty else {
            throw ModelError.invalidModel(file: file, reason: "tensor '\(name)' is stored externally but has no 'location'")
        }
        let url = try resolve(location, tensor: name)
        let whole: Data
        if let cached = mapped[url.path] {
            whole = cached
        } else {
            whole = try readFile(url, mapped: true)
            mapped[url.path] = whole
        }
        let end = length.map { offset + $0 } ?? whole.count
        guard offset <= whole.count, end <= whole.count else {
            throw ModelError.invalidModel(file: file, reason: "tensor '\(name)': external data \(location) has \(whole.count) bytes, "
                                          + "but offset \(offset) and length \(length.map(String.init) ?? "-") ask for bytes up to \(end)")
        }
        return whole.subdata(in: (whole.startIndex + offset)..<(whole.startIndex + end))
    }

    /// A location is trusted only if it stays inside the model directory, lexically and after following symlinks:
    /// a model file must not be able to read /etc/passwd or ~/.ssh through its "weights".
    private func resolve(_ location: String, tensor: String) throws -> URL {
        func refuse(_ reason: String) -> ModelError {
            .unsafeExternalDataLocation(file: file, tensor: tensor, location: location, reason: reason)
        }
        if location.hasPrefix("/") || location.hasPrefix("\\") || location.contains(":") {
            throw refuse("absolute paths are not allowed; it must be relative to the model's directory")
        }
        var depth = 0
        for component in location.split(whereSeparator: { $0 == "/" || $0 == "\\" }) {
            if component == ".." { depth -= 1 } else if component != "." { depth += 1 }
            if depth < 0 { throw refuse("it leaves the model's directory") }
        }
        guard let baseDirectory else {
            throw ModelError.invalidModel(file: file, reason: "tensor '\(tensor)' is stored externally in '\(location)', "
                                          + "but the model was not loaded from a directory")
        }
        let candidate = baseDirectory.appendingPathComponent(location)
        guard FileManager.default.fileExists(atPath: candidate.path) else {
            throw ModelError.invalidModel(file: file, reason: "external data file '\(location)' of tensor '\(tensor)' "
                                          + "does not exist (looked for \(candidate.path))")
        }
        guard let realBase = realPath(baseDirectory.path), let realCandidate = realPath(candidate.path) else {
            throw ModelError.ioFailed(file: candidate.path, reason: "cannot resolve path")
        }
        let prefix = realBase.hasSuffix("/") ? realBase : realBase + "/"
        guard realCandidate.hasPrefix(prefix) else { throw refuse("it resolves (through a symlink) to \(realCandidate), outside the model's directory") }
        return URL(fileURLWithPath: realCandidate)
    }
}

private func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// Bytes per element in raw_data, for the types we decode.
private func rawElementSize(_ type: ElementType) -> Int? {
    switch type {
    case .float, .int32, .uint32: return 4
    case .double, .int64, .uint64: return 8
    case .float16, .int16, .uint16: return 2
    case .uint8, .int8, .bool: return 1
    case .undefined, .string: return nil
    }
}

/// IEEE 754 half -> single, exact for every value (subnormals, infinities, NaN).
@inline(__always) func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        let magnitude = Float(mantissa) * 0x1p-24  // subnormal (or zero)
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | (UInt32(exponent + 112) << 23) | (mantissa << 13))
}

private let bfloat16Type = 16

/// Converts a TensorProto (inline typed fields, raw_data or external data) into a `Value`.
func value(from proto: Onnx_TensorProto, file: String, external: ExternalDataReader?) throws -> Value {
    let name = proto.name
    func bad(_ reason: String) -> ModelError { .invalidModel(file: file, reason: "tensor '\(name)': \(reason)") }

    var shape: [Int] = []
    var count = 1
    for d in proto.dims {
        guard d >= 0, d <= Int64(Int32.max) else { throw bad("dimension \(d) in shape \(proto.dims)") }
        shape.append(Int(d))
        let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
        guard !overflow, product <= 1 << 40 else { throw bad("shape \(proto.dims) is too large") }
        count = product
    }

    let rawType = Int(proto.dataType)
    let isBFloat16 = rawType == bfloat16Type
    guard let type = isBFloat16 ? ElementType.float16 : ElementType(rawValue: rawType), type != .undefined, type != .string else {
        throw ModelError.unsupported(file: file, reason: "tensor '\(name)' has data type \(rawType), which dream cannot use")
    }

    // Raw bytes: from raw_data or an external file.
    var raw: Data?
    if proto.dataLocation == .external {
        guard let external else { throw bad("stored externally, but external data is not available here") }
        raw = try external.bytes(for: proto.externalData, tensor: name)
    } else if proto.hasRawData {
        raw = proto.rawData
    }

    if let raw {
        let size = isBFloat16 ? 2 : rawElementSize(type)!
        guard raw.count == count * size else {
            throw bad("raw data has \(raw.count) bytes, but shape \(shape) of \(type) needs \(count * size)")
        }
        return raw.withUnsafeBytes { bytes -> Value in
            switch type {
            case .float:
                return .float(Tensor(shape: shape) { out in
                    if count > 0 { memcpy(out.baseAddress!, bytes.baseAddress!, count * 4) }
                })
            case .double:
                return .float(Tensor(shape: shape) { out in
                    for i in 0..<count { out[i] = Float(Double(bitPattern: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self).littleEndian)) }
                })
            case .float16:
                return .float(Tensor(shape: shape) { out in
                    for i in 0..<count {
                        let bits = bytes.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self).littleEndian
                        out[i] = isBFloat16 ? Float(bitPattern: UInt32(bits) << 16) : floatFromHalfBits(bits)
                    }
                })
            case .int64, .uint64:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian) }))
            case .int32:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }))
            case .uint32:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }))
            case .int16:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) }))
            case .uint16:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }))
            case .int8:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(bytes.load(fromByteOffset: $0, as: Int8.self)) }))
            case .uint8, .bool:
                return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(bytes[$0]) }))
            case .undefined, .string:
                fatalError("unreachable: rejected above")
            }
        }
    }

    // Inline typed fields.
    func checkCount(_ n: Int, _ field: String) throws {
        guard n == count else { throw bad("\(field) has \(n) values, but shape \(shape) needs \(count)") }
    }
    switch type {
    case .float:
        try checkCount(proto.floatData.count, "float_data")
        return .float(Tensor(shape: shape, scalars: proto.floatData))
    case .double:
        try checkCount(proto.doubleData.count, "double_data")
        return .float(Tensor(shape: shape, scalars: proto.doubleData.map { Float($0) }))
    case .float16:
        try checkCount(proto.int32Data.count, "int32_data")
        return .float(Tensor(shape: shape, scalars: proto.int32Data.map {
            let bits = UInt16(truncatingIfNeeded: $0)
            return isBFloat16 ? Float(bitPattern: UInt32(bits) << 16) : floatFromHalfBits(bits)
        }))
    case .int64:
        try checkCount(proto.int64Data.count, "int64_data")
        return .int(IntTensor(shape: shape, values: proto.int64Data))
    case .int32, .int16, .int8, .uint16, .uint8, .bool:
        try checkCount(proto.int32Data.count, "int32_data")
        return .int(IntTensor(shape: shape, values: proto.int32Data.map { Int64($0) }))
    case .uint32, .uint64:
        try checkCount(proto.uint64Data.count, "uint64_data")
        return .int(IntTensor(shape: shape, values: proto.uint64Data.map { Int64(truncatingIfNeeded: $0) }))
    case .undefined, .string:
        fatalError("unreachable: rejected above")
    }
}

/// Encodes a `Value` as a TensorProto: floats as FLOAT raw_data, integers as INT64 raw_data.
func tensorProto(named name: String, from value: Value) -> Onnx_TensorProto {
    var proto = Onnx_TensorProto()
    proto.name = name
    proto.dims = value.shape.map { Int64($0) }
    switch value {
    case .float(let t):
        proto.dataType = Int32(ElementType.float.rawValue)
        proto.rawData = t.withUnsafeBufferPointer { Data(buffer: $0) }
    case .int(let t):
        proto.dataType = Int32(ElementType.int64.rawValue)
        proto.rawData = t.values.map { $0.littleEndian }.withUnsafeBufferPointer { Data(buffer: $0) }
    }
    return proto
}
