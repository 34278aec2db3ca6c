using System.Runtime.InteropServices;

namespace Orleans.LIFL.Dataplane;

/// <summary>
/// A buffer of the node's shared pool as any process of the node can name it (lifl_desc, 32 bytes): where it is,
/// how long, and which allocation it is (record and generation), so a descriptor of a freed buffer is refused.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct BufferDescriptor(ulong Offset, ulong Length, uint Record, uint Generation, ulong Tag)
{
    public override string ToString() => $"buffer #{Record}.{Generation} ({Length:N0} B at {Offset:N0})";
}

/// <summary>A dataplane operation failed; the message says which and why.</summary>
public sealed class DataplaneException : Exception
{
    public DataplaneException(string message, int status = 0) : base(message)
    {
        Status = status;
    }

    /// <summary>The liflnative status code (LIFL_E_*), 0 when the failure was not the library's.</summary>
    public int Status { get; }
}
