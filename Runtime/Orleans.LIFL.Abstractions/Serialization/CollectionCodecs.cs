using System.Collections.Immutable;

namespace Orleans.LIFL.Serialization;

/// <summary>
/// Shared shape of sequence codecs: the count as field 0, each element as field 1, then the end tag. Everything
/// inside carries a field header, so a reader that does not know the field can skip it.
/// </summary>
internal abstract class SequenceCodec<TCollection, TElement> : IFieldCodec<TCollection>
{
    public WireType WireType => WireType.TagDelimited;

    protected abstract int CountOf(TCollection collection);

    protected abstract IEnumerable<TElement> Elements(TCollection collection);

    protected abstract TCollection Create(int count);

    protected abstract TCollection Add(TCollection collection, int index, TElement element);

    public virtual void WriteValue(ref Writer writer, TCollection value)
    {
        writer.WriteFieldHeader(0, WireType.VarInt);
        writer.WriteVarUInt32((uint)CountOf(value));
        foreach (var element in Elements(value))
        {
            Codec<TElement>.WriteField(ref writer, 1, element);
        }

        writer.WriteEndTag();
    }

    public TCollection ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.TagDelimited)
        {
            throw reader.Unexpected(wireType, typeof(TCollection).Name);
        }

        reader.EnterNested();
        var (countField, countWire) = reader.ReadFieldHeader();
        if (countField != 0 || countWire != WireType.VarInt)
        {
            throw reader.Unexpected(countWire, $"the element count of a {typeof(TCollection).Name}");
        }

        var count = reader.ReadCount();
        var collection = Create(count);
        for (var i = 0; i < count; i++)
        {
            collection = Add(collection, i, Codec<TElement>.ReadField(ref reader));
        }

        var (_, end) = reader.ReadFieldHeader();
        if (end != WireType.EndTag)
        {
            throw reader.Unexpected(end, $"the end of a {typeof(TCollection).Name}");
        }

        reader.ExitNested();
        return collection;
    }
}

internal sealed class ArrayCodec<T> : SequenceCodec<T[], T>
{
    protected override int CountOf(T[] collection) => collection.Length;

    protected override IEnumerable<T> Elements(T[] collection) => collection;

    protected override T[] Create(int count) => new T[count];

    protected override T[] Add(T[] collection, int index, T element)
    {
        collection[index] = element;
        return collection;
    }
}

internal sealed class ListCodec<T> : SequenceCodec<List<T>, T>
{
    protected override int CountOf(List<T> collection) => collection.Count;

    protected override IEnumerable<T> Elements(List<T> collection) => collection;

    protected override List<T> Create(int count) => new(count);

    protected override List<T> Add(List<T> collection, int index, T element)
    {
        collection.Add(element);
        return collection;
    }
}

internal sealed class HashSetCodec<T> : SequenceCodec<HashSet<T>, T>
{
    protected override int CountOf(HashSet<T> collection) => collection.Count;

    protected override IEnumerable<T> Elements(HashSet<T> collection) => collection;

    protected override HashSet<T> Create(int count) => new(count);

    protected override HashSet<T> Add(HashSet<T> collection, int index, T element)
    {
        collection.Add(element);
        return collection;
    }
}

internal sealed class QueueCodec<T> : SequenceCodec<Queue<T>, T>
{
    protected override int CountOf(Queue<T> collection) => collection.Count;

    protected override IEnumerable<T> Elements(Queue<T> collection) => collection;

    protected override Queue<T> Create(int count) => new(count);

    protected override Queue<T> Add(Queue<T> collection, int index, T element)
    {
        collection.Enqueue(element);
        return collection;
    }
}

internal sealed class ImmutableArrayCodec<T> : SequenceCodec<ImmutableArray<T>, T>
{
    protected override int CountOf(ImmutableArray<T> collection) => collection.IsDefault ? 0 : collection.Length;

    protected override IEnumerable<T> Elements(ImmutableArray<T> collection) => collection.IsDefault ? [] : collection;

    protected override ImmutableArray<T> Create(int count) => ImmutableArray<T>.Empty;

    protected override ImmutableArray<T> Add(ImmutableArray<T> collection, int index, T element) => collection.Add(element);
}

internal sealed class ImmutableListCodec<T> : SequenceCodec<ImmutableList<T>, T>
{
    protected override int CountOf(ImmutableList<T> collection) => collection.Count;

    protected override IEnumerable<T> Elements(ImmutableList<T> collection) => collection;

    protected override ImmutableList<T> Create(int count) => ImmutableList<T>.Empty;

    protected override ImmutableList<T> Add(ImmutableList<T> collection, int index, T element) => collection.Add(element);
}

internal sealed class DictionaryCodec<TKey, TValue> : SequenceCodec<Dictionary<TKey, TValue>, KeyValuePair<TKey, TValue>>
    where TKey : notnull
{
    protected override int CountOf(Dictionary<TKey, TValue> collection) => collection.Count;

    protected override IEnumerable<KeyValuePair<TKey, TValue>> Elements(Dictionary<TKey, TValue> collection) => collection;

    protected override Dictionary<TKey, TValue> Create(int count) => new(count);

    protected override Dictionary<TKey, TValue> Add(Dictionary<TKey, TValue> collection, int index, KeyValuePair<TKey, TValue> element)
    {
        if (!collection.TryAdd(element.Key, element.Value))
        {
            throw new SerializationException($"Duplicate key {element.Key} in a serialized dictionary.");
        }

        return collection;
    }
}

internal sealed class SortedDictionaryCodec<TKey, TValue> : SequenceCodec<SortedDictionary<TKey, TValue>, KeyValuePair<TKey, TValue>>
    where TKey : notnull
{
    protected override int CountOf(SortedDictionary<TKey, TValue> collection) => collection.Count;

    protected override IEnumerable<KeyValuePair<TKey, TValue>> Elements(SortedDictionary<TKey, TValue> collection) => collection;

    protected override SortedDictionary<TKey, TValue> Create(int count) => [];

    protected override SortedDictionary<TKey, TValue> Add(SortedDictionary<TKey, TValue> collection, int index, KeyValuePair<TKey, TValue> element)
    {
        if (!collection.TryAdd(element.Key, element.Value))
        {
            throw new SerializationException($"Duplicate key {element.Key} in a serialized dictionary.");
        }

        return collection;
    }
}

internal sealed class MemoryCodec<T> : IFieldCodec<Memory<T>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, Memory<T> value)
    {
        Codec<T[]>.WriteField(ref writer, 0, value.ToArray());
        writer.WriteEndTag();
    }

    public Memory<T> ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadSingle<T[]>(ref reader, wireType, "Memory");
}

internal sealed class ReadOnlyMemoryCodec<T> : IFieldCodec<ReadOnlyMemory<T>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, ReadOnlyMemory<T> value)
    {
        Codec<T[]>.WriteField(ref writer, 0, value.ToArray());
        writer.WriteEndTag();
    }

    public ReadOnlyMemory<T> ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadSingle<T[]>(ref reader, wireType, "ReadOnlyMemory");
}

internal sealed class ImmutableWrapperCodec<T> : IFieldCodec<Immutable<T>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, Immutable<T> value)
    {
        Codec<T>.WriteField(ref writer, 0, value.Value);
        writer.WriteEndTag();
    }

    public Immutable<T> ReadValue(ref Reader reader, WireType wireType) => new(TupleFields.ReadSingle<T>(ref reader, wireType, "Immutable"));
}

internal sealed class NullableCodec<T> : IFieldCodec<T?>
    where T : struct
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, T? value)
    {
        Codec<T>.WriteField(ref writer, 0, value!.Value);
        writer.WriteEndTag();
    }

    public T? ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadSingle<T>(ref reader, wireType, typeof(T).Name + "?");
}

internal sealed class KeyValuePairCodec<TKey, TValue> : IFieldCodec<KeyValuePair<TKey, TValue>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, KeyValuePair<TKey, TValue> value)
    {
        Codec<TKey>.WriteField(ref writer, 0, value.Key);
        Codec<TValue>.WriteField(ref writer, 1, value.Value);
        writer.WriteEndTag();
    }

    public KeyValuePair<TKey, TValue> ReadValue(ref Reader reader, WireType wireType)
    {
        var (key, value) = TupleFields.ReadPair<TKey, TValue>(ref reader, wireType, "KeyValuePair");
        return new KeyValuePair<TKey, TValue>(key, value);
    }
}

internal sealed class ValueTupleCodec<T1, T2> : IFieldCodec<ValueTuple<T1, T2>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, (T1, T2) value)
    {
        Codec<T1>.WriteField(ref writer, 0, value.Item1);
        Codec<T2>.WriteField(ref writer, 1, value.Item2);
        writer.WriteEndTag();
    }

    public (T1, T2) ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadPair<T1, T2>(ref reader, wireType, "tuple");
}

internal sealed class TupleCodec<T1, T2> : IFieldCodec<Tuple<T1, T2>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, Tuple<T1, T2> value)
    {
        Codec<T1>.WriteField(ref writer, 0, value.Item1);
        Codec<T2>.WriteField(ref writer, 1, value.Item2);
        writer.WriteEndTag();
    }

    public Tuple<T1, T2> ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadPair<T1, T2>(ref reader, wireType, "tuple").ToTuple();
}

internal sealed class ValueTupleCodec<T1, T2, T3> : IFieldCodec<ValueTuple<T1, T2, T3>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, (T1, T2, T3) value)
    {
        Codec<T1>.WriteField(ref writer, 0, value.Item1);
        Codec<T2>.WriteField(ref writer, 1, value.Item2);
        Codec<T3>.WriteField(ref writer, 2, value.Item3);
        writer.WriteEndTag();
    }

    public (T1, T2, T3) ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadTriple<T1, T2, T3>(ref reader, wireType);
}

internal sealed class TupleCodec<T1, T2, T3> : IFieldCodec<Tuple<T1, T2, T3>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, Tuple<T1, T2, T3> value)
    {
        Codec<T1>.WriteField(ref writer, 0, value.Item1);
        Codec<T2>.WriteField(ref writer, 1, value.Item2);
        Codec<T3>.WriteField(ref writer, 2, value.Item3);
        writer.WriteEndTag();
    }

    public Tuple<T1, T2, T3> ReadValue(ref Reader reader, WireType wireType) => TupleFields.ReadTriple<T1, T2, T3>(ref reader, wireType).ToTuple();
}

internal sealed class ValueTupleCodec<T1, T2, T3, T4> : IFieldCodec<ValueTuple<T1, T2, T3, T4>>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, (T1, T2, T3, T4) value)
    {
        Codec<T1>.WriteField(ref writer, 0, value.Item1);
        Codec<T2>.WriteField(ref writer, 1, value.Item2);
        Codec<T3>.WriteField(ref writer, 2, value.Item3);
        Codec<T4>.WriteField(ref writer, 3, value.Item4);
        writer.WriteEndTag();
    }

    public (T1, T2, T3, T4) ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "tuple");
        (T1, T2, T3, T4) value = default;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: value.Item1 = Codec<T1>.ReadValue(ref reader, wire); break;
                case 1: value.Item2 = Codec<T2>.ReadValue(ref reader, wire); break;
                case 2: value.Item3 = Codec<T3>.ReadValue(ref reader, wire); break;
                case 3: value.Item4 = Codec<T4>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        return value;
    }
}

/// <summary>Reading the numbered fields of small fixed-shape values.</summary>
internal static class TupleFields
{
    public static T ReadSingle<T>(ref Reader reader, WireType wireType, string what)
    {
        var fields = new TagReader(ref reader, wireType, what);
        T value = default!;
        var seen = false;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            if (id == 0)
            {
                value = Codec<T>.ReadValue(ref reader, wire);
                seen = true;
            }
            else
            {
                reader.SkipField(wire);
            }
        }

        return seen ? value : throw new SerializationException($"A serialized {what} has no value.");
    }

    public static (T1, T2) ReadPair<T1, T2>(ref Reader reader, WireType wireType, string what)
    {
        var fields = new TagReader(ref reader, wireType, what);
        (T1, T2) value = default;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: value.Item1 = Codec<T1>.ReadValue(ref reader, wire); break;
                case 1: value.Item2 = Codec<T2>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        return value;
    }

    public static (T1, T2, T3) ReadTriple<T1, T2, T3>(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "tuple");
        (T1, T2, T3) value = default;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: value.Item1 = Codec<T1>.ReadValue(ref reader, wire); break;
                case 1: value.Item2 = Codec<T2>.ReadValue(ref reader, wire); break;
                case 2: value.Item3 = Codec<T3>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        return value;
    }
}
