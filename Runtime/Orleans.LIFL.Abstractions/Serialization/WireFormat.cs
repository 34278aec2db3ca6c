using System.Buffers;
using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Orleans.LIFL.Serialization;

/// <summary>
/// How a field's value is laid out, written in the low 3 bits of every field header so a reader can skip fields
/// it does not know (version tolerance).
/// </summary>
public enum WireType : byte
{
    /// <summary>A variable-length integer.</summary>
    VarInt = 0,

    /// <summary>Four bytes, little-endian.</summary>
    Fixed32 = 1,

    /// <summary>Eight bytes, little-endian.</summary>
    Fixed64 = 2,

    /// <summary>A variable-length byte count, then that many bytes.</summary>
    LengthPrefixed = 3,

    /// <summary>Nested fields up to an <see cref="EndTag"/>.</summary>
    TagDelimited = 4,

    /// <summary>Closes a <see cref="TagDelimited"/> value.</summary>
    EndTag = 5,

    /// <summary>A null reference (no body).</summary>
    Null = 6,

    /// <summary>A value of a type other than the declared one: its type name, its own wire type, then its body.</summary>
    Polymorphic = 7,
}

/// <summary>Malformed or unsupported serialized data. The message says what was wrong and where.</summary>
public sealed class SerializationException : LiflException
{
    public SerializationException(string message) : base(message)
    {
    }
}

/// <summary>Writes the wire format into an <see cref="IBufferWriter{T}"/> without intermediate buffers.</summary>
[EditorBrowsable(EditorBrowsableState.Advanced)]
public ref struct Writer
{
    private readonly IBufferWriter<byte> _output;
    private Span<byte> _span;
    private int _position;

    public Writer(IBufferWriter<byte> output, SerializerSession? session = null)
    {
        _output = output;
        _span = default;
        _position = 0;
        Session = session;
    }

    public SerializerSession? Session { get; }

    /// <summary>Hands everything written so far to the output. Call once at the end.</summary>
    public void Commit()
    {
        if (_position > 0)
        {
            _output.Advance(_position);
            _position = 0;
        }

        _span = default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int count)
    {
        if (_span.Length - _position < count)
        {
            Grow(count);
        }

        return _span[_position..];
    }

    private void Grow(int count)
    {
        Commit();
        _span = _output.GetSpan(Math.Max(count, 256));
    }

    public void WriteByte(byte value)
    {
        Reserve(1)[0] = value;
        _position++;
    }

    public void WriteVarUInt32(uint value)
    {
        var span = Reserve(5);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        _position += i;
    }

    public void WriteVarUInt64(ulong value)
    {
        var span = Reserve(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        _position += i;
    }

    public void WriteVarInt32(int value) => WriteVarUInt32((uint)((value << 1) ^ (value >> 31)));

    public void WriteVarInt64(long value) => WriteVarUInt64((ulong)((value << 1) ^ (value >> 63)));

    public void WriteFixed32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), value);
        _position += 4;
    }

    public void WriteFixed64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(Reserve(8), value);
        _position += 8;
    }

    public void WriteFieldHeader(uint fieldId, WireType wireType) => WriteVarUInt32((fieldId << 3) | (uint)wireType);

    public void WriteEndTag() => WriteByte((byte)WireType.EndTag);

    /// <summary>A length prefix and the bytes.</summary>
    public void WriteLengthPrefixed(scoped ReadOnlySpan<byte> bytes)
    {
        WriteVarUInt32((uint)bytes.Length);
        WriteRaw(bytes);
    }

    /// <summary>Raw bytes, no prefix.</summary>
    public void WriteRaw(scoped ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var span = Reserve(Math.Min(bytes.Length, 64 * 1024));
            var chunk = Math.Min(span.Length, bytes.Length);
            bytes[..chunk].CopyTo(span);
            _position += chunk;
            bytes = bytes[chunk..];
        }
    }

    /// <summary>A non-null string as a length-prefixed UTF-8 body.</summary>
    public void WriteStringBody(string value)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max < 0x80)
        {
            // One-byte length prefix: encode straight after it, then fill it in.
            var span = Reserve(max + 1);
            var length = Encoding.UTF8.GetBytes(value, span[1..]);
            span[0] = (byte)length;
            _position += length + 1;
            return;
        }

        var count = Encoding.UTF8.GetByteCount(value);
        WriteVarUInt32((uint)count);
        if (count <= 64 * 1024)
        {
            Encoding.UTF8.GetBytes(value, Reserve(count));
            _position += count;
        }
        else
        {
            WriteRaw(Encoding.UTF8.GetBytes(value));
        }
    }

    /// <summary>A block of unmanaged values (an array of numbers, a tensor) as raw little-endian bytes.</summary>
    public void WriteBlock<T>(scoped ReadOnlySpan<T> values)
        where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The wire format is little-endian.");
        }

        WriteLengthPrefixed(MemoryMarshal.AsBytes(values));
    }
}

/// <summary>Reads the wire format from a contiguous buffer, checking every length against what is there.</summary>
[EditorBrowsable(EditorBrowsableState.Advanced)]
public ref struct Reader
{
    /// <summary>Nesting deeper than this is refused (it would otherwise risk the stack on hostile input).</summary>
    public const int MaxDepth = 128;

    private readonly ReadOnlySpan<byte> _buffer;
    private int _position;
    private int _depth;

    public Reader(ReadOnlySpan<byte> buffer, SerializerSession? session = null)
    {
        _buffer = buffer;
        _position = 0;
        _depth = 0;
        Session = session;
    }

    public SerializerSession? Session { get; }

    public readonly int Position => _position;

    public readonly int Remaining => _buffer.Length - _position;

    public readonly bool IsAtEnd => _position >= _buffer.Length;

    public byte ReadByte()
    {
        if (_position >= _buffer.Length)
        {
            throw Truncated(1, "a byte");
        }

        return _buffer[_position++];
    }

    public uint ReadVarUInt32()
    {
        uint result = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = ReadByte();
            result |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw new SerializationException($"Malformed variable-length integer at offset {_position}.");
    }

    public ulong ReadVarUInt64()
    {
        ulong result = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw new SerializationException($"Malformed variable-length integer at offset {_position}.");
    }

    public int ReadVarInt32()
    {
        var raw = ReadVarUInt32();
        return (int)(raw >> 1) ^ -(int)(raw & 1);
    }

    public long ReadVarInt64()
    {
        var raw = ReadVarUInt64();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    public uint ReadFixed32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadRaw(4));

    public ulong ReadFixed64() => BinaryPrimitives.ReadUInt64LittleEndian(ReadRaw(8));

    public (uint FieldId, WireType WireType) ReadFieldHeader()
    {
        var header = ReadVarUInt32();
        var wireType = (WireType)(header & 7);
        return (header >> 3, wireType);
    }

    public ReadOnlySpan<byte> ReadRaw(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw Truncated(count, $"{count} bytes");
        }

        var span = _buffer.Slice(_position, count);
        _position += count;
        return span;
    }

    public ReadOnlySpan<byte> ReadLengthPrefixed()
    {
        var length = ReadVarUInt32();
        if (length > (uint)Remaining)
        {
            throw Truncated((int)Math.Min(length, int.MaxValue), $"a {length}-byte value");
        }

        return ReadRaw((int)length);
    }

    public string ReadStringBody() => Encoding.UTF8.GetString(ReadLengthPrefixed());

    public T[] ReadBlock<T>()
        where T : unmanaged
    {
        var bytes = ReadLengthPrefixed();
        var size = Unsafe.SizeOf<T>();
        if (bytes.Length % size != 0)
        {
            throw new SerializationException($"A block of {typeof(T).Name} is {bytes.Length} bytes, not a multiple of {size}.");
        }

        var values = new T[bytes.Length / size];
        bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Reads an element count, refusing counts the remaining bytes could not possibly hold.</summary>
    public int ReadCount(int minimumBytesPerItem = 1)
    {
        var count = ReadVarUInt32();
        if (count > int.MaxValue || (long)count * minimumBytesPerItem > Remaining)
        {
            throw new SerializationException($"A count of {count} at offset {_position} exceeds the {Remaining} bytes left.");
        }

        return (int)count;
    }

    /// <summary>Marks entry into a nested value; fails on hostile nesting depth.</summary>
    public void EnterNested()
    {
        if (++_depth > MaxDepth)
        {
            throw new SerializationException($"Values nested more than {MaxDepth} deep at offset {_position}.");
        }
    }

    public void ExitNested() => _depth--;

    /// <summary>Skips a field of a wire type this reader does not need (an unknown field from a newer version).</summary>
    public void SkipField(WireType wireType)
    {
        switch (wireType)
        {
            case WireType.VarInt:
                ReadVarUInt64();
                break;
            case WireType.Fixed32:
                ReadRaw(4);
                break;
            case WireType.Fixed64:
                ReadRaw(8);
                break;
            case WireType.LengthPrefixed:
                ReadLengthPrefixed();
                break;
            case WireType.TagDelimited:
                EnterNested();
                while (true)
                {
                    var (_, inner) = ReadFieldHeader();
                    if (inner == WireType.EndTag)
                    {
                        break;
                    }

                    SkipField(inner);
                }

                ExitNested();
                break;
            case WireType.Null:
                break;
            case WireType.Polymorphic:
                EnterNested();
                ReadLengthPrefixed();
                var (_, actual) = ReadFieldHeader();
                SkipField(actual);
                ExitNested();
                break;
            default:
                throw new SerializationException($"Unexpected wire type {wireType} at offset {_position}.");
        }
    }

    public SerializationException Unexpected(WireType actual, string expected) =>
        new($"Expected {expected} but found wire type {actual} at offset {_position}.");

    private readonly SerializationException Truncated(int needed, string what) =>
        new($"Data ends at offset {_position} while reading {what} ({needed} needed, {Remaining} left).");
}
