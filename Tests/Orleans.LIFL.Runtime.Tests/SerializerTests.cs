using System.Buffers;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Serialization;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The binary wire format: round trips, version tolerance, and hostile input.</summary>
public sealed class SerializerTests
{
    private static T RoundTrip<T>(T value) => LiflSerializer.Deserialize<T>(LiflSerializer.SerializeToArray(value));

    /// <summary>A generated type with nested objects, collections and nulls comes back equal and unshared.</summary>
    [Fact]
    public void Generated_types_round_trip()
    {
        var original = new Payload
        {
            Name = "root ✓ ünïcode",
            Values = [1, -2, int.MaxValue, int.MinValue],
            Table = { ["a"] = [1, 2], ["empty"] = [] },
            Child = new Payload { Name = "child", Child = null },
        };

        var copy = RoundTrip(original);
        Assert.Equal(original.Name, copy.Name);
        Assert.Equal(original.Values, copy.Values);
        Assert.Equal([1, 2], copy.Table["a"]);
        Assert.Empty(copy.Table["empty"]);
        Assert.Equal("child", copy.Child!.Name);
        Assert.Null(copy.Child.Child);
    }

    /// <summary>Records, record structs, generic types, enums, tuples and framework values round trip.</summary>
    [Fact]
    public void Records_generics_and_framework_values_round_trip()
    {
        var shape = new Shape("poly", [new Point(1, 2), new Point(-3, 4)], new() { ["origin"] = new Point(0, 0) });
        var copy = RoundTrip(shape);
        Assert.Equal(shape.Kind, copy.Kind);
        Assert.Equal(shape.Points, copy.Points);
        Assert.Equal(shape.Named["origin"], copy.Named["origin"]);

        Assert.Equal("x", RoundTrip(new Box<string> { Value = "x" }).Value);
        Assert.Equal(new Point(5, 6), RoundTrip(new Box<Point> { Value = new Point(5, 6) }).Value);
        Assert.Equal(Color.Red, RoundTrip(Color.Red));
        Assert.Equal((1, "two", 3.5), RoundTrip((1, "two", 3.5)));
        var now = DateTimeOffset.UtcNow.ToOffset(TimeSpan.FromHours(2));
        Assert.Equal(now, RoundTrip(now));
        Assert.Equal(DateTime.UtcNow.Date, RoundTrip(DateTime.UtcNow.Date));
        Assert.Equal(TimeSpan.FromMilliseconds(-1234.5), RoundTrip(TimeSpan.FromMilliseconds(-1234.5)));
        var guid = Guid.NewGuid();
        Assert.Equal(guid, RoundTrip(guid));
        Assert.Equal(123.456m, RoundTrip(123.456m));
        Assert.Equal((int?)null, RoundTrip((int?)null));
        Assert.Equal(7, RoundTrip((int?)7));
        Assert.Null(RoundTrip<string?>(null));
        var id = GrainId.Create(new GrainType("t"), "k/with/slashes");
        Assert.Equal(id, RoundTrip(id));
    }

    /// <summary>Arrays of numbers travel as raw blocks, bit for bit (NaN payloads and negative zero included).</summary>
    [Fact]
    public void Number_arrays_are_exact()
    {
        var floats = new[] { 1.5f, float.NaN, -0.0f, float.Epsilon, BitConverter.Int32BitsToSingle(0x7FC00123) };
        var copy = RoundTrip(floats);
        Assert.Equal(floats.Select(BitConverter.SingleToInt32Bits), copy.Select(BitConverter.SingleToInt32Bits));

        var doubles = Enumerable.Range(0, 10_000).Select(i => Math.Sin(i)).ToArray();
        Assert.Equal(doubles, RoundTrip(doubles));

        // A block is its raw bytes plus a field header and a length: no per-element overhead.
        Assert.InRange(LiflSerializer.SerializeToArray(doubles).Length, 80_000, 80_000 + 8);
    }

    /// <summary>A newer version's extra fields are skipped by an older reader, and missing ones default for a newer reader.</summary>
    [Fact]
    public void Versions_read_each_other()
    {
        var v2 = new ContractV2
        {
            Name = "n",
            Count = 3,
            Added = [new Payload { Name = "deep", Child = new Payload() }],
            Weights = [0.5, 0.25],
            Anything = new List<string> { "polymorphic" },
        };

        var asV1 = LiflSerializer.Deserialize<ContractV1>(LiflSerializer.SerializeToArray(v2));
        Assert.Equal(("n", 3), (asV1.Name, asV1.Count));

        var asV2 = LiflSerializer.Deserialize<ContractV2>(LiflSerializer.SerializeToArray(new ContractV1 { Name = "old", Count = 9 }));
        Assert.Equal(("old", 9), (asV2.Name, asV2.Count));
        Assert.Empty(asV2.Added);
        Assert.Null(asV2.Anything);
    }

    /// <summary>Values declared as object or as an interface keep their runtime type.</summary>
    [Fact]
    public void Runtime_types_are_kept()
    {
        var copy = RoundTrip(new ContractV2 { Anything = new Payload { Name = "inside object" } });
        Assert.Equal("inside object", Assert.IsType<Payload>(copy.Anything).Name);

        IReadOnlyList<int> list = new List<int> { 4, 5 };
        Assert.Equal([4, 5], Assert.IsType<List<int>>(RoundTrip(list)));

        object boxed = 42L;
        Assert.Equal(42L, RoundTrip(boxed));
    }

    /// <summary>Exceptions come back with their type, message, inner exception and the remote stack trace.</summary>
    [Fact]
    public void Exceptions_keep_type_message_and_stack()
    {
        Exception thrown;
        try
        {
            throw new WireTestException("outer", new InvalidOperationException("inner"));
        }
        catch (Exception error)
        {
            thrown = error;
        }

        var copy = Assert.IsType<WireTestException>(RoundTrip(thrown));
        Assert.Equal("outer", copy.Message);
        Assert.Equal("inner", Assert.IsType<InvalidOperationException>(copy.InnerException).Message);
        Assert.Contains(nameof(Exceptions_keep_type_message_and_stack), copy.StackTrace, StringComparison.Ordinal);

        var unknown = Assert.IsType<RemoteGrainException>(RoundTrip<Exception>(new NoMessageConstructorException(7)));
        Assert.Contains(nameof(NoMessageConstructorException), unknown.RemoteTypeName, StringComparison.Ordinal);
        Assert.Contains("code 7", unknown.Message, StringComparison.Ordinal);
    }

    /// <summary>A type without [GenerateSerializer] is refused with an error saying how to fix it.</summary>
    [Fact]
    public void Unserializable_types_are_named()
    {
        var error = Assert.Throws<CodecNotFoundException>(() => LiflSerializer.SerializeToArray(new Version(1, 2).GetType().Assembly));
        Assert.Contains("[GenerateSerializer]", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Every truncation of valid data fails with SerializationException, never with another error.</summary>
    [Fact]
    public void Truncated_data_is_rejected_cleanly()
    {
        var bytes = LiflSerializer.SerializeToArray(new ContractV2 { Name = "n", Added = [new Payload { Values = [1, 2, 3] }], Weights = [1, 2], Anything = "s" });
        for (var length = 0; length < bytes.Length; length++)
        {
            var cut = bytes[..length];
            Assert.Throws<SerializationException>(() => LiflSerializer.Deserialize<ContractV2>(cut));
        }
    }

    /// <summary>Random bytes never crash the reader: only SerializationException or CodecNotFoundException.</summary>
    [Fact]
    public void Random_bytes_are_rejected_cleanly()
    {
        var random = new Random(1234);
        var valid = LiflSerializer.SerializeToArray(new ContractV2 { Name = "n", Added = [new Payload()], Anything = new Payload() });
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = i % 2 == 0 ? new byte[random.Next(1, 64)] : (byte[])valid.Clone();
            if (i % 2 == 0)
            {
                random.NextBytes(bytes);
            }
            else
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }

            try
            {
                LiflSerializer.Deserialize<ContractV2>(bytes);
            }
            catch (Exception error) when (error is SerializationException or CodecNotFoundException)
            {
            }
        }
    }

    /// <summary>Hostile nesting and absurd counts are refused without exhausting the stack or memory.</summary>
    [Fact]
    public void Hostile_shapes_are_refused()
    {
        // An unknown field (id 99) opening 100,000 nested values: the reader skips it, and must stop at its depth limit.
        var nested = new ArrayBufferWriter<byte>();
        var writer = new Writer(nested);
        writer.WriteFieldHeader(0, WireType.TagDelimited);
        for (var i = 0; i < 100_000; i++)
        {
            writer.WriteFieldHeader(99, WireType.TagDelimited);
        }

        writer.Commit();
        var deep = Assert.Throws<SerializationException>(() => LiflSerializer.Deserialize<ContractV2>(nested.WrittenSpan));
        Assert.Contains("nested", deep.Message, StringComparison.Ordinal);

        var huge = new ArrayBufferWriter<byte>();
        var countWriter = new Writer(huge);
        countWriter.WriteFieldHeader(0, WireType.TagDelimited);
        countWriter.WriteFieldHeader(0, WireType.VarInt);
        countWriter.WriteVarUInt32(int.MaxValue);
        countWriter.Commit();
        var count = Assert.Throws<SerializationException>(() => LiflSerializer.Deserialize<List<int>>(huge.WrittenSpan));
        Assert.Contains("count", count.Message, StringComparison.Ordinal);
    }

    /// <summary>A type name on the wire that names an unknown or unserializable type is refused by name.</summary>
    [Fact]
    public void Unknown_type_names_are_refused()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new Writer(buffer);
        writer.WriteFieldHeader(0, WireType.Polymorphic);
        writer.WriteStringBody("System.Diagnostics.Process, System.Diagnostics.Process");
        writer.WriteFieldHeader(0, WireType.TagDelimited);
        writer.WriteEndTag();
        writer.Commit();
        var error = Assert.Throws<SerializationException>(() => LiflSerializer.Deserialize<object>(buffer.WrittenSpan));
        Assert.Contains("System.Diagnostics.Process", error.Message, StringComparison.Ordinal);
    }
}
