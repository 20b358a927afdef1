import Foundation
import Tensors

/// NumPy `.npy` arrays (format versions 1.0, 2.0, 3.0): the golden data of the tests and `dream` dumps.
/// Reads little-endian, C-order '<f4' '<f8' (as float) and '<i8' '<i4' '<i2' '|i1' '|u1' '|b1' (as int); writes '<f4' / '<i8'.
public enum NumPyFile {
    /// The array in `url`.
    public static func read(contentsOf url: URL) throws -> Value {
        try parse(try readFile(url), file: url.path)
    }

    /// The array in `.npy` bytes (e.g. an `.npz` entry); `name` is used in error messages.
    public static func read(data: Data, name: String) throws -> Value {
        try parse(data, file: name)
    }

    /// Writes `value` to `url` atomically.
    public static func write(_ value: Value, to url: URL) throws {
        try writeFileAtomically(serialize(value), to: url)
    }

    /// Version 1.0 .npy bytes: float as '<f4', int as '<i8', data starting at a multiple of 64.
    public static func serialize(_ value: Value) -> Data {
        let shape = value.shape
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        let descr: String
        switch value {
        case .float: descr = "<f4"
        case .int: descr = "<i8"
        }
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // magic (6) + version (2) + length (2) + header + "\n", padded with spaces to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let headerLength = header.utf8.count
        precondition(headerLength <= Int(UInt16.max), "shape \(shape) too long for a version 1.0 header")

        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(headerLength & 0xff), UInt8(headerLength >> 8)])
        data.append(contentsOf: Array(header.utf8))
        switch value {
        case .float(let t): t.withUnsafeBufferPointer { data.append($0) }
        case .int(let t): t.values.map { $0.littleEndian }.withUnsafeBufferPointer { data.append($0) }
        }
        return data
    }

    static func parse(_ data: Data, file: String) throws -> Value {
        func invalid(_ reason: String) -> ModelError { .invalidNumPy(file: file, reason: reason) }
        func unsupported(_ reason: String) -> ModelError { .unsupportedNumPy(file: file, reason: reason) }

        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw invalid("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerStart: Int
        let headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw invalid("truncated header") }
            headerStart = 12
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        default:
            throw unsupported("format version \(major).\(bytes[7])")
        }
        guard data.count >= headerStart + headerLength else { throw invalid("truncated header (\(data.count) bytes)") }
        let headerBytes = data.subdata(in: (data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength))
        // v1/v2 headers are latin-1, v3 UTF-8; the keys and values we read are ASCII either way.
        let headerText = major == 3 ? String(decoding: headerBytes, as: UTF8.self) : String(headerBytes.map { Character(Unicode.Scalar($0)) })
        let header = try NumPyHeader(parsing: headerText, file: file)

        if header.fortranOrder { throw unsupported("fortran_order is True (column-major); save it with np.ascontiguousarray") }
        var descr = header.descr
        guard let order = descr.first, let kind = descr.dropFirst().first, let size = Int(descr.dropFirst(2)) else {
            throw unsupported("dtype '\(descr)'")
        }
        if order == ">" && size > 1 { throw unsupported("big-endian dtype '\(descr)'; convert with arr.astype('<\(kind)\(size)')") }
        guard order == "<" || order == "|" || order == "=" || (order == ">" && size == 1) else { throw unsupported("dtype '\(descr)'") }
        descr = "\(kind)\(size)"

        var count = 1
        for d in header.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else { throw invalid("shape \(header.shape)") }
            count = product
        }
        let elementSize: Int
        switch descr {
        case "f4", "i4": elementSize = 4
        case "f8", "i8": elementSize = 8
        case "i2": elementSize = 2
        case "i1", "u1", "b1": elementSize = 1
        default: throw unsupported("dtype '\(header.descr)' (dream reads f4, f8, i8, i4, i2, i1, u1, b1)")
        }
        let dataStart = headerStart + headerLength
        let payload = data.count - dataStart
        guard payload == count * elementSize else {
            throw invalid("shape \(header.shape) of '\(header.descr)' needs \(count * elementSize) data bytes, the file has \(payload)")
        }
        let shape = header.shape
        return data.withUnsafeBytes { raw -> Value in
            let base = UnsafeRawBufferPointer(rebasing: raw[dataStart...])
            switch descr {
            case "f4":
                return .float(Tensor(shape: shape) { out in
                    if count > 0 { memcpy(out.baseAddress!, base.baseAddress!, count * 4) }  // host is little-endian
                })
            case "f8":
                return .float(Tensor(shape: shape) { out in
                    for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))) }
                })
            case "i8": return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }))
            case "i4": return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }))
            case "i2": return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self))) }))
            case "i1": return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(Int8(bitPattern: base[$0])) }))
            default: return .int(IntTensor(shape: shape, values: (0..<count).map { Int64(base[$0]) }))  // u1, b1
            }
        }
    }
}

/// The python-literal dict of an .npy header: {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }
private struct NumPyHeader {
    var descr = ""
    var fortranOrder = false
    var shape: [Int] = []

    init(parsing text: String, file: String) throws {
        var scanner = LiteralScanner(text: Array(text.unicodeScalars), file: file)
        var sawDescr = false, sawShape = false
        try scanner.expect("{")
        while try scanner.peek() != "}" {
            let key = try scanner.string()
            try scanner.expect(":")
            switch key {
            case "descr": descr = try scanner.string(); sawDescr = true
            case "fortran_order": fortranOrder = try scanner.bool()
            case "shape": shape = try scanner.intTuple(); sawShape = true
            default: try scanner.skipValue()
            }
            if try scanner.peek() == "," { try scanner.expect(",") }
        }
        guard sawDescr, sawShape else { throw ModelError.invalidNumPy(file: file, reason: "header lacks 'descr' or 'shape': \(text)") }
    }
}

private struct LiteralScanner {
    let text: [Unicode.Scalar]
    let file: String
    var position = 0

    init(text: [Unicode.Scalar], file: String) {
        self.text = text
        self.file = file
    }

    func error(_ what: String) -> ModelError {
        .invalidNumPy(file: file, reason: "header: \(what) at offset \(position) of '\(String(String.UnicodeScalarView(text)))'")
    }

    mutating func skipSpace() { while position < text.count, text[position].properties.isWhitespace { position += 1 } }

    mutating func peek() throws -> Unicode.Scalar {
        skipSpace()
        guard position < text.count else { throw error("unexpected end") }
        return text[position]
    }

    mutating func expect(_ c: Unicode.Scalar) throws {
        guard try peek() == c else { throw error("expected '\(c)'") }
        position += 1
    }

    mutating func string() throws -> String {
        let quote = try peek()
        guard quote == "'" || quote == "\"" else { throw error("expected a string") }
        position += 1
        var result = String.UnicodeScalarView()
        while position < text.count, text[position] != quote {
            result.append(text[position])
            position += 1
        }
        guard position < text.count else { throw error("unterminated string") }
        position += 1
        return String(result)
    }

    mutating func word() throws -> String {
        _ = try peek()
        var result = String.UnicodeScalarView()
        while position < text.count, text[position].properties.isAlphabetic || ("0"..."9").contains(text[position]) || text[position] == "_" || text[position] == "-" {
            result.append(text[position])
            position += 1
        }
        return String(result)
    }

    mutating func bool() throws -> Bool {
        switch try word() {
        case "True": return true
        case "False": return false
        default: throw error("expected True or False")
        }
    }

    mutating func intTuple() throws -> [Int] {
        try expect("(")
        var values: [Int] = []
        while try peek() != ")" {
            guard let v = Int(try word().replacingOccurrences(of: "L", with: "")) else { throw error("expected an integer") }  // py2 wrote 3L
            values.append(v)
            if try peek() == "," { try expect(",") }
        }
        try expect(")")
        return values
    }

    /// Skips a value of a key we do not know (strings, words, or bracketed groups).
    mutating func skipValue() throws {
        let c = try peek()
        if c == "'" || c == "\"" { _ = try string(); return }
        if c == "(" || c == "[" || c == "{" {
            var depth = 0
            repeat {
                let d = try peek()
                if d == "'" || d == "\"" { _ = try string(); continue }
                if d == "(" || d == "[" || d == "{" { depth += 1 }
                if d == ")" || d == "]" || d == "}" { depth -= 1 }
                position += 1
            } while depth > 0
            return
        }
        if try word().isEmpty { throw error("unexpected '\(c)'") }
    }
}
