using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Streams;

/// <summary>A stream's identity: a namespace (which implicit subscribers listen to) and a key.</summary>
[Immutable]
public readonly record struct StreamId
{
    public StreamId(string streamNamespace, string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(streamNamespace);
        ArgumentNullException.ThrowIfNull(key);
        if (streamNamespace.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Stream namespace '{streamNamespace}' must not contain '/'.", nameof(streamNamespace));
        }

        Namespace = streamNamespace;
        Key = key;
    }

    public string Namespace { get; }

    public string Key { get; }

    public static StreamId Create(string streamNamespace, string key) => new(streamNamespace, key);

    public static StreamId Create(string streamNamespace, Guid key) => new(streamNamespace, GrainId.FormatKey(key));

    public static StreamId Create(string streamNamespace, long key) => new(streamNamespace, GrainId.FormatKey(key));

    public override string ToString() => $"{Namespace}/{Key}";
}

/// <summary>The position of an event in a stream, as given by its producer.</summary>
[Immutable]
public sealed record StreamSequenceToken(long SequenceNumber);
