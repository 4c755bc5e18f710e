internal static partial class Interop
{
    internal static class Libraries
    {
        // Bare "libc": the runtime's loader resolves it to the C library (libc.so is a linker script on glibc).
        internal const string Libc = "libc";
    }
}
