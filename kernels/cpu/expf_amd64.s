//go:build !purego

#include "textflag.h"

// ·expTab holds the constants of the macros in expf_amd64.h: rows of eight
// float32 lanes, then two float64 values.
DATA ·expTab+0(SB)/8, $0x3fb8aa3b3fb8aa3b // log2 e
DATA ·expTab+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA ·expTab+16(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA ·expTab+24(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA ·expTab+32(SB)/8, $0x3f3172003f317200 // ln 2, high part
DATA ·expTab+40(SB)/8, $0x3f3172003f317200
DATA ·expTab+48(SB)/8, $0x3f3172003f317200
DATA ·expTab+56(SB)/8, $0x3f3172003f317200
DATA ·expTab+64(SB)/8, $0x35bfbe8e35bfbe8e // ln 2, low part
DATA ·expTab+72(SB)/8, $0x35bfbe8e35bfbe8e
DATA ·expTab+80(SB)/8, $0x35bfbe8e35bfbe8e
DATA ·expTab+88(SB)/8, $0x35bfbe8e35bfbe8e
DATA ·expTab+96(SB)/8, $0x3ab60b613ab60b61 // 1/720
DATA ·expTab+104(SB)/8, $0x3ab60b613ab60b61
DATA ·expTab+112(SB)/8, $0x3ab60b613ab60b61
DATA ·expTab+120(SB)/8, $0x3ab60b613ab60b61
DATA ·expTab+128(SB)/8, $0x3c0888893c088889 // 1/120
DATA ·expTab+136(SB)/8, $0x3c0888893c088889
DATA ·expTab+144(SB)/8, $0x3c0888893c088889
DATA ·expTab+152(SB)/8, $0x3c0888893c088889
DATA ·expTab+160(SB)/8, $0x3d2aaaab3d2aaaab // 1/24
DATA ·expTab+168(SB)/8, $0x3d2aaaab3d2aaaab
DATA ·expTab+176(SB)/8, $0x3d2aaaab3d2aaaab
DATA ·expTab+184(SB)/8, $0x3d2aaaab3d2aaaab
DATA ·expTab+192(SB)/8, $0x3e2aaaab3e2aaaab // 1/6
DATA ·expTab+200(SB)/8, $0x3e2aaaab3e2aaaab
DATA ·expTab+208(SB)/8, $0x3e2aaaab3e2aaaab
DATA ·expTab+216(SB)/8, $0x3e2aaaab3e2aaaab
DATA ·expTab+224(SB)/8, $0x3f0000003f000000 // 1/2
DATA ·expTab+232(SB)/8, $0x3f0000003f000000
DATA ·expTab+240(SB)/8, $0x3f0000003f000000
DATA ·expTab+248(SB)/8, $0x3f0000003f000000
DATA ·expTab+256(SB)/8, $0x3f8000003f800000 // 1 (also 127 << 23)
DATA ·expTab+264(SB)/8, $0x3f8000003f800000
DATA ·expTab+272(SB)/8, $0x3f8000003f800000
DATA ·expTab+280(SB)/8, $0x3f8000003f800000
DATA ·expTab+288(SB)/8, $0xc2ae999ac2ae999a // -87.3: below it e^x is 0
DATA ·expTab+296(SB)/8, $0xc2ae999ac2ae999a
DATA ·expTab+304(SB)/8, $0xc2ae999ac2ae999a
DATA ·expTab+312(SB)/8, $0xc2ae999ac2ae999a
DATA ·expTab+320(SB)/8, $0x8000000080000000 // sign bit
DATA ·expTab+328(SB)/8, $0x8000000080000000
DATA ·expTab+336(SB)/8, $0x8000000080000000
DATA ·expTab+344(SB)/8, $0x8000000080000000
DATA ·expTab+352(SB)/8, $0xbf1b4598bf1b4598 // -e^(-1/2), the decay's scale
DATA ·expTab+360(SB)/8, $0xbf1b4598bf1b4598
DATA ·expTab+368(SB)/8, $0xbf1b4598bf1b4598
DATA ·expTab+376(SB)/8, $0xbf1b4598bf1b4598
DATA ·expTab+384(SB)/8, $0x3ecccccd3ecccccd // 0.4: below it tanh is its Taylor series
DATA ·expTab+392(SB)/8, $0x3ecccccd3ecccccd
DATA ·expTab+400(SB)/8, $0x3ecccccd3ecccccd
DATA ·expTab+408(SB)/8, $0x3ecccccd3ecccccd
DATA ·expTab+416(SB)/8, $0xbeaaaaabbeaaaaab // -1/3
DATA ·expTab+424(SB)/8, $0xbeaaaaabbeaaaaab
DATA ·expTab+432(SB)/8, $0xbeaaaaabbeaaaaab
DATA ·expTab+440(SB)/8, $0xbeaaaaabbeaaaaab
DATA ·expTab+448(SB)/8, $0x3e0888893e088889 // 2/15
DATA ·expTab+456(SB)/8, $0x3e0888893e088889
DATA ·expTab+464(SB)/8, $0x3e0888893e088889
DATA ·expTab+472(SB)/8, $0x3e0888893e088889
DATA ·expTab+480(SB)/8, $0xbd5d0dd1bd5d0dd1 // -17/315
DATA ·expTab+488(SB)/8, $0xbd5d0dd1bd5d0dd1
DATA ·expTab+496(SB)/8, $0xbd5d0dd1bd5d0dd1
DATA ·expTab+504(SB)/8, $0xbd5d0dd1bd5d0dd1
DATA ·expTab+512(SB)/8, $0x3cb327a43cb327a4 // 62/2835
DATA ·expTab+520(SB)/8, $0x3cb327a43cb327a4
DATA ·expTab+528(SB)/8, $0x3cb327a43cb327a4
DATA ·expTab+536(SB)/8, $0x3cb327a43cb327a4
DATA ·expTab+544(SB)/8, $0xbc11371bbc11371b // -1382/155925
DATA ·expTab+552(SB)/8, $0xbc11371bbc11371b
DATA ·expTab+560(SB)/8, $0xbc11371bbc11371b
DATA ·expTab+568(SB)/8, $0xbc11371bbc11371b
DATA ·expTab+576(SB)/8, $0x3d719799812dea11 // 1e-12 (float64)
DATA ·expTab+584(SB)/8, $0x3ff0000000000000 // 1 (float64)
GLOBL ·expTab(SB), RODATA|NOPTR, $592
