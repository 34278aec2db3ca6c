using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.PostgreSql;

/// <summary>Turns grain state into the bytes of the payload column and back.</summary>
internal interface IStatePayloadCodec
{
    byte[] Serialize<T>(T value);

    T Deserialize<T>(ReadOnlySpan<byte> bytes);
}

/// <summary>The runtime's binary serializer: what silos store.</summary>
internal sealed class LiflSerializerPayloadCodec : IStatePayloadCodec
{
    public static readonly LiflSerializerPayloadCodec Instance = new();

    public byte[] Serialize<T>(T value) => LiflSerializer.SerializeToArray(value);

    public T Deserialize<T>(ReadOnlySpan<byte> bytes) => LiflSerializer.Deserialize<T>(bytes);
}
