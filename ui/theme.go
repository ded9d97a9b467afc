package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// Colors the app adds to Fyne's palette.
const (
	colorUserBubble fyne.ThemeColorName = "gooseUserBubble"
	colorSidebar    fyne.ThemeColorName = "gooseSidebar"
	colorCard       fyne.ThemeColorName = "gooseCard"
	colorSubtle     fyne.ThemeColorName = "gooseSubtle"
)

func rgb(hex uint32) color.NRGBA {
	return color.NRGBA{R: uint8(hex >> 16), G: uint8(hex >> 8), B: uint8(hex), A: 0xff}
}

func rgba(hex uint32, a uint8) color.NRGBA {
	c := rgb(hex)
	c.A = a
	return c
}

// palettes returns the colors that differ from Fyne's defaults.
func palettes() map[fyne.ThemeVariant]map[fyne.ThemeColorName]color.Color {
	return map[fyne.ThemeVariant]map[fyne.ThemeColorName]color.Color{
		theme.VariantLight: {
			theme.ColorNameBackground:        rgb(0xffffff),
			theme.ColorNameForeground:        rgb(0x1f2328),
			theme.ColorNamePrimary:           rgb(0x2f6fde),
			theme.ColorNameButton:            rgb(0xeef1f5),
			theme.ColorNameInputBackground:   rgb(0xf4f6f9),
			theme.ColorNameInputBorder:       rgb(0xd5dae1),
			theme.ColorNameSeparator:         rgb(0xe3e7ec),
			theme.ColorNameHeaderBackground:  rgb(0xf4f6f9),
			theme.ColorNameMenuBackground:    rgb(0xffffff),
			theme.ColorNameOverlayBackground: rgb(0xffffff),
			theme.ColorNameSelection:         rgba(0x2f6fde, 0x40),
			theme.ColorNameHover:             rgba(0x000000, 0x0d),
			theme.ColorNamePlaceHolder:       rgb(0x8a929c),
			colorUserBubble:                  rgb(0xe3ecfc),
			colorSidebar:                     rgb(0xf3f5f8),
			colorCard:                        rgb(0xf7f8fa),
			colorSubtle:                      rgb(0x667080),
		},
		theme.VariantDark: {
			theme.ColorNameBackground:        rgb(0x1b1d21),
			theme.ColorNameForeground:        rgb(0xe6e8eb),
			theme.ColorNamePrimary:           rgb(0x6b9bff),
			theme.ColorNameButton:            rgb(0x2b2f36),
			theme.ColorNameInputBackground:   rgb(0x25282e),
			theme.ColorNameInputBorder:       rgb(0x3a3f47),
			theme.ColorNameSeparator:         rgb(0x30343b),
			theme.ColorNameHeaderBackground:  rgb(0x23262b),
			theme.ColorNameMenuBackground:    rgb(0x25282e),
			theme.ColorNameOverlayBackground: rgb(0x23262b),
			theme.ColorNameSelection:         rgba(0x6b9bff, 0x50),
			theme.ColorNameHover:             rgba(0xffffff, 0x12),
			theme.ColorNamePlaceHolder:       rgb(0x7d8590),
			colorUserBubble:                  rgb(0x2a3852),
			colorSidebar:                     rgb(0x16181b),
			colorCard:                        rgb(0x23262b),
			colorSubtle:                      rgb(0x9aa3ae),
		},
	}
}

// appTheme is Goose's look: Fyne's default theme with calmer colors, a
// slightly larger text size and roomier padding. Variant forces light or
// dark; "system" follows the desktop.
type appTheme struct {
	mode   string // "system", "light" or "dark"
	colors map[fyne.ThemeVariant]map[fyne.ThemeColorName]color.Color
}

func newTheme(mode string) *appTheme { return &appTheme{mode: mode, colors: palettes()} }

func (t *appTheme) variant(v fyne.ThemeVariant) fyne.ThemeVariant {
	switch t.mode {
	case "light":
		return theme.VariantLight
	case "dark":
		return theme.VariantDark
	}
	return v
}

func (t *appTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	v = t.variant(v)
	if c, ok := t.colors[v][n]; ok {
		return c
	}
	return theme.DefaultTheme().Color(n, v)
}

func (t *appTheme) Font(s fyne.TextStyle) fyne.Resource { return theme.DefaultTheme().Font(s) }

func (t *appTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return theme.DefaultTheme().Icon(n) }

func (t *appTheme) Size(n fyne.ThemeSizeName) float32 {
	switch n {
	case theme.SizeNameText:
		return 14.5
	case theme.SizeNameCaptionText:
		return 12.5
	case theme.SizeNamePadding:
		return 5
	case theme.SizeNameInnerPadding:
		return 10
	case theme.SizeNameInputRadius, theme.SizeNameSelectionRadius:
		return 8
	case theme.SizeNameHeadingText:
		return 22
	case theme.SizeNameSubHeadingText:
		return 17
	}
	return theme.DefaultTheme().Size(n)
}

// themeColor looks up a color in the app's current theme.
func themeColor(n fyne.ThemeColorName) color.Color {
	app := fyne.CurrentApp()
	if app == nil {
		return theme.DefaultTheme().Color(n, theme.VariantLight)
	}
	return app.Settings().Theme().Color(n, app.Settings().ThemeVariant())
}
