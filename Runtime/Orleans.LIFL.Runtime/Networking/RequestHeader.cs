using Orleans.LIFL.Invocation;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>
/// What precedes a request's arguments on the wire: correlation, method, target, the time the caller still waits,
/// how often it was re-routed, and the call chain (callers in other processes) for deadlock detection.
/// </summary>
internal readonly record struct RequestHeader(
    long Correlation,
    uint MethodWireId,
    GrainId Target,
    uint TimeoutMilliseconds,
    int ForwardCount,
    IReadOnlyList<CallChainEntry>? Chain)
{
    /// <summary>Longer chains are cut: deadlocks are found near the top, and headers stay small under deep recursion.</summary>
    public const int MaxChainLength = 32;

    public static void Write(ref Writer writer, RequestBase request, long correlation, TimeProvider time)
    {
        writer.WriteVarUInt64((ulong)correlation);
        writer.WriteFixed32(request.Method.WireId);
        writer.WriteStringBody(request.TargetId.Type.Value);
        writer.WriteStringBody(request.TargetId.Key);
        uint timeout = 0;
        if (request.DeadlineTimestamp != 0)
        {
            var remaining = Messaging.CallTimeouts.ToTimeSpan(time, request.DeadlineTimestamp - time.GetTimestamp());
            timeout = (uint)Math.Clamp(Math.Ceiling(remaining.TotalMilliseconds), 1, uint.MaxValue);
        }

        writer.WriteVarUInt32(timeout);
        writer.WriteByte((byte)Math.Min(request.ForwardCount, byte.MaxValue));
        WriteChain(ref writer, request);
    }

    private static void WriteChain(ref Writer writer, RequestBase request)
    {
        // Local callers (innermost first), then the remote callers of the outermost local one.
        var entries = new List<CallChainEntry>();
        TurnContext root = request;
        for (var caller = request.Caller; caller is not null && entries.Count < MaxChainLength; caller = caller.Caller)
        {
            if (caller.Scheduler is { } scheduler)
            {
                entries.Add(new CallChainEntry(scheduler.GrainId, caller.ChainId));
            }

            root = caller;
        }

        if (root.RemoteCallers is { } remote)
        {
            foreach (var entry in remote)
            {
                if (entries.Count >= MaxChainLength)
                {
                    break;
                }

                entries.Add(entry);
            }
        }

        writer.WriteVarUInt32((uint)entries.Count);
        foreach (var entry in entries)
        {
            writer.WriteStringBody(entry.Grain.Type.Value);
            writer.WriteStringBody(entry.Grain.Key);
            writer.WriteVarUInt64((ulong)entry.ChainId);
        }
    }

    public static RequestHeader Read(ref Reader reader)
    {
        var correlation = (long)reader.ReadVarUInt64();
        var method = reader.ReadFixed32();
        var target = ReadGrainId(ref reader);
        var timeout = reader.ReadVarUInt32();
        int forwardCount = reader.ReadByte();
        var count = reader.ReadCount(minimumBytesPerItem: 3);
        if (count > MaxChainLength)
        {
            throw new SerializationException($"A call chain of {count} entries (at most {MaxChainLength}).");
        }

        List<CallChainEntry>? chain = null;
        for (var i = 0; i < count; i++)
        {
            (chain ??= new List<CallChainEntry>(count)).Add(new CallChainEntry(ReadGrainId(ref reader), (long)reader.ReadVarUInt64()));
        }

        return new RequestHeader(correlation, method, target, timeout, forwardCount, chain);
    }

    private static GrainId ReadGrainId(ref Reader reader)
    {
        var type = reader.ReadStringBody();
        var key = reader.ReadStringBody();
        return string.IsNullOrWhiteSpace(type)
            ? throw new SerializationException("A grain id without a grain type.")
            : new GrainId(new GrainType(type), key);
    }

    public void ApplyTo(RequestBase request, TimeProvider time)
    {
        var now = time.GetTimestamp();
        request.TargetId = Target;
        request.SentTimestamp = now;
        request.DeadlineTimestamp = TimeoutMilliseconds == 0 ? 0 : now + Messaging.CallTimeouts.ToTicks(time, TimeSpan.FromMilliseconds(TimeoutMilliseconds));
        request.ForwardCount = ForwardCount;
        request.RemoteCallers = Chain;
    }
}
