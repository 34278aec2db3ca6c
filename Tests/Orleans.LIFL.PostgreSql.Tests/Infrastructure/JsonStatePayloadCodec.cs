using System.Text.Json;

namespace Orleans.LIFL.PostgreSql.Tests.Infrastructure;

/// <summary>Grain state as JSON: lets the storage tests use plain classes, without generated serializers.</summary>
internal sealed class JsonStatePayloadCodec : IStatePayloadCodec
{
    public static readonly JsonStatePayloadCodec Instance = new();

    public byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value);

    public T Deserialize<T>(ReadOnlySpan<byte> bytes) => JsonSerializer.Deserialize<T>(bytes)!;
}
