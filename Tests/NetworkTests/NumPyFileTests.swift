import Foundation
import Network
import Tensors
import TestSupport
import XCTest

/// An .npy file with the given header text (padded like NumPy does) and payload.
func npyBytes(header: String, payload: [UInt8], major: UInt8 = 1) -> Data {
    let prefix = major == 1 ? 10 : 12
    var text = header
    text += String(repeating: " ", count: (64 - (prefix + text.utf8.count + 1) % 64) % 64) + "\n"
    let n = text.utf8.count
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0, UInt8(n & 0xff), UInt8(n >> 8)]
    if major != 1 { bytes += [0, 0] }
    return Data(bytes + Array(text.utf8) + payload)
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

final class NumPyFileTests: XCTestCase {
    func testReadsGoldenChelseaInput() throws {
        let url = try SharedData.file("golden/googlenet_bvlc/chelsea.input.npy")
        let tensor = try XCTUnwrap(try NumPyFile.read(contentsOf: url).floatTensor)
        XCTAssertEqual(tensor.shape, [1, 3, 224, 224])
        // Reference values from numpy.load.
        XCTAssertEqual(tensor[0, 0, 0, 0], 5)
        XCTAssertEqual(tensor[0, 0, 0, 1], 5)
        XCTAssertEqual(tensor[0, 2, 223, 223], 70)
        XCTAssertEqual(tensor.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) } }, -918547)
        // Our writer produces the same bytes NumPy wrote.
        XCTAssertEqual(NumPyFile.serialize(.float(tensor)), try Data(contentsOf: url))
    }

    func testFloatAndIntRoundTripsAreExactWithDataAlignedTo64Bytes() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let values: [Value] = [
            .float(Tensor.random(shape: [2, 3, 5], in: -10...10, seed: 3)),
            .float(Tensor(shape: [7], scalars: [1, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 3])),
            .float(Tensor(2.5)),
            .float(Tensor(shape: [0, 4], scalars: [])),
            .int(IntTensor(shape: [2, 2], values: [.min, -1, 0, .max])),
        ]
        for (i, value) in values.enumerated() {
            let data = NumPyFile.serialize(value)
            let headerLength = Int(data[8]) | Int(data[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0)
            XCTAssertEqual(data[10 + headerLength - 1], UInt8(ascii: "\n"))
            let url = dir.appendingPathComponent("v\(i).npy")
            try NumPyFile.write(value, to: url)
            XCTAssertTrue(valuesIdentical(value, try NumPyFile.read(contentsOf: url)), "value \(i)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), Set((0..<values.count).map { "v\($0).npy" }))
        let header = String(decoding: NumPyFile.serialize(values[0]).prefix(128).dropFirst(10), as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 5), }"), header)
        XCTAssertTrue(String(decoding: NumPyFile.serialize(values[1]), as: UTF8.self).contains("'shape': (7,)"))
        XCTAssertTrue(String(decoding: NumPyFile.serialize(values[2]), as: UTF8.self).contains("'shape': ()"))
    }

    func testReadsOtherDtypesAndVersion2And3Headers() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        func read(_ data: Data) throws -> Value {
            let url = dir.appendingPathComponent("a.npy")
            try data.write(to: url)
            return try NumPyFile.read(contentsOf: url)
        }
        let f8 = try read(npyBytes(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                                   payload: littleEndianBytes([(0.5).bitPattern, (-3.0).bitPattern])))
        XCTAssertEqual(f8.floatTensor?.scalars, [0.5, -3])
        let i4 = try read(npyBytes(header: "{\"shape\": (1, 3), \"fortran_order\": False, \"descr\": \"<i4\"}",
                                   payload: littleEndianBytes([Int32(-2), 0, 9]), major: 2))
        XCTAssertEqual(i4.intTensor, IntTensor(shape: [1, 3], values: [-2, 0, 9]))
        let b1 = try read(npyBytes(header: "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", payload: [1, 0, 1], major: 3))
        XCTAssertEqual(b1.intTensor, IntTensor(shape: [3], values: [1, 0, 1]))
        let u1 = try read(npyBytes(header: "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", payload: [255, 7]))
        XCTAssertEqual(u1.intTensor, IntTensor(shape: [2], values: [255, 7]))
        let i8 = try read(npyBytes(header: "{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }", payload: littleEndianBytes([Int64(-5), 6])))
        XCTAssertEqual(i8.intTensor, IntTensor(shape: [2], values: [-5, 6]))
    }

    func testRefusesFortranOrderBigEndianUnknownDtypesAndTruncation() throws {
        let dir = try SharedData.temporaryDirectory(for: self)
        let cases: [(String, Data, String)] = [
            ("fortran", npyBytes(header: "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", payload: [0, 0, 0, 0]), "fortran_order is True"),
            ("big", npyBytes(header: "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", payload: [0, 0, 0, 0]), "big-endian dtype '>f4'"),
            ("complex", npyBytes(header: "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", payload: Array(repeating: 0, count: 8)), "dtype '<c8'"),
            ("short", npyBytes(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", payload: [0, 0, 0, 0]), "needs 12 data bytes, the file has 4"),
            ("magic", Data("PK\u{3}\u{4} zip file".utf8), "missing the \\x93NUMPY magic"),
            ("header", npyBytes(header: "{'descr': '<f4', 'fortran_order': False}", payload: []), "lacks 'descr' or 'shape'"),
        ]
        for (name, data, message) in cases {
            let url = dir.appendingPathComponent("\(name).npy")
            try data.write(to: url)
            XCTAssertThrowsError(try NumPyFile.read(contentsOf: url), name) { error in
                XCTAssertTrue("\(error)".hasPrefix(url.path), "\(error)")
                XCTAssertTrue("\(error)".contains(message), "\(name): \(error)")
            }
        }
    }
}
