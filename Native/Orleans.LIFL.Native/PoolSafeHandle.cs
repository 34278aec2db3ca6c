using System.Runtime.InteropServices;

namespace Orleans.LIFL.Dataplane;

/// <summary>
/// The native pool handle. Every call that passes it holds a reference on it, so closing the pool waits for calls
/// in progress instead of pulling the mapping from under them.
/// </summary>
internal sealed class PoolSafeHandle() : SafeHandle(IntPtr.Zero, ownsHandle: true)
{
    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.PoolClose(handle);
        return true;
    }
}
